"""The docs stand on their own: no Markdown link points outside the repository.

A clone has nothing beside it, so a link such as ``../shared/DESIGN.md`` or an
absolute file path is broken for every reader. Each link in every tracked
Markdown file must be a web address, an anchor, or a path to a tracked file
inside the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INLINE = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def tracked(pattern: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", pattern], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def links(text: str) -> list[str]:
    return INLINE.findall(text) + REFERENCE.findall(text)


def outside(doc: Path, target: str, files: set[Path]) -> str | None:
    """Why ``target`` (a link in ``doc``) is not a tracked file of the repository, or None."""
    if target.startswith(EXTERNAL) or target.startswith("#"):
        return None
    if target.startswith(("/", "file:", "~")) or re.match(r"^[A-Za-z]:[\\/]", target):
        return "an absolute path"
    path = (doc.parent / target.split("#", 1)[0]).resolve()
    if not path.is_relative_to(ROOT):
        return "outside the repository"
    if path not in files and not any(f.is_relative_to(path) for f in files):
        return "not a tracked file"
    return None


def test_the_scanner_catches_what_it_must() -> None:
    doc, files = ROOT / "README.md", {ROOT / "docs" / "DESIGN.md"}
    assert outside(doc, "../shared/DESIGN.md", files) == "outside the repository"
    assert outside(doc, "/work/shared/DESIGN.md", files) == "an absolute path"
    assert outside(doc, "file:///tmp/x.md", files) == "an absolute path"
    assert outside(doc, "docs/NOPE.md", files) == "not a tracked file"
    assert outside(doc, "docs/DESIGN.md#layout", files) is None
    assert outside(doc, "docs", files) is None
    assert outside(doc, "https://example.com/a", files) is None
    assert links("see [a](../x.md) and [b]( <docs/y.md> )\n[c]: ../../z.md\n") == [
        "../x.md",
        "docs/y.md",
        "../../z.md",
    ]


@pytest.mark.parametrize("doc", tracked("*.md"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_markdown_link_points_outside_the_repository(doc: Path) -> None:
    files = set(tracked("*"))
    text = doc.read_text(encoding="utf-8")
    broken = [(t, why) for t in links(text) if (why := outside(doc, t, files)) is not None]
    assert broken == [], f"{doc.relative_to(ROOT)}: {broken}"
    assert "../shared/" not in text, "the shared design lives in docs/DESIGN.md now"
