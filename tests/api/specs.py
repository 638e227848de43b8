"""Workflow specs as JSON documents, as a producer in another language would send them."""

from __future__ import annotations

from typing import Any

B = "tests.steps.basic"
S = "tests.steps.saga"


def branches(name: str) -> dict[str, Any]:
    """``big`` runs only when emit > 10: with the default input it is skipped, and so is
    ``after_big``; ``tolerant`` runs either way."""
    return {
        "name": name,
        "version": 1,
        "steps": {
            "emit": {"task": f"{B}:emit"},
            "big": {"task": f"{B}:add_one", "after": ["emit"], "when": f"{B}:is_big"},
            "after_big": {"task": f"{B}:add_one", "after": ["big"]},
            "tolerant": {"task": f"{B}:total", "after": ["big", "emit"], "trigger": "none_failed"},
        },
    }


def approval(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": 1,
        "steps": {
            "emit": {"task": f"{B}:emit"},
            "review": {"wait_for": "approval", "after": ["emit"]},
            "publish": {"task": f"{B}:publish", "after": ["review", "emit"]},
        },
    }


def saga(name: str) -> dict[str, Any]:
    """``a`` has an effect at once; ``b`` runs for seconds (stopping when cancelled)."""
    return {
        "name": name,
        "version": 1,
        "steps": {
            "a": {"task": f"{S}:effect", "effects": True, "compensate": f"{S}:undo"},
            "b": {
                "task": f"{S}:slow_effect",
                "after": ["a"],
                "effects": True,
                "compensate": f"{S}:undo",
            },
        },
    }


def mapped(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": 1,
        "steps": {
            "seq": {"task": f"{B}:seq"},
            "square": {"task": f"{B}:square", "after": ["seq"], "map": "seq"},
            "sum_list": {"task": f"{B}:sum_list", "after": ["square"]},
        },
    }


def failing(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": 1,
        "steps": {
            "emit": {"task": f"{B}:emit"},
            "boom": {"task": f"{S}:fails", "after": ["emit"], "retry": {"max_attempts": 1}},
        },
    }


def wide(name: str, width: int) -> dict[str, Any]:
    """One root, ``width`` parallel steps, one join: ``width + 2`` steps."""
    steps: dict[str, Any] = {"root": {"task": f"{B}:emit"}}
    for k in range(width):
        steps[f"w{k:04d}"] = {"task": f"{B}:add_one", "after": ["root"]}
    steps["join"] = {"task": f"{B}:total", "after": [f"w{k:04d}" for k in range(width)]}
    return {"name": name, "version": 1, "steps": steps}
