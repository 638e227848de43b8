"""Module-level step functions the unit tests import by path (never run by a worker)."""

from __future__ import annotations

from pydantic import BaseModel

from orchestrator import StepContext, step


class Document(BaseModel):
    url: str
    text: str


@step
def fetch(url: str) -> Document:
    return Document(url=url, text=f"text of {url}")


@step
def classify(fetch: Document, threshold: int, ctx: StepContext, prefix: str = "label") -> str:
    return f"{prefix}:{len(fetch.text) > threshold}:{ctx.idempotency_key}"


@step
def chunk(fetch: Document) -> list[str]:
    return fetch.text.split()


@step
def untyped(fetch, threshold=3):  # type: ignore[no-untyped-def]
    return fetch, threshold


@step
def optional_upstream(fetch: Document | None = None) -> bool:
    return fetch is not None


@step
def noop() -> None:
    return None


NOT_CALLABLE = 42
