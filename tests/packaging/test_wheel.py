"""The wheel installs only ``orchestrator`` and ``workers``, passes twine, and runs the demo.

Installing the project once put top-level ``bench`` and ``examples`` packages
into site-packages, where they could clash with a user's own. The test builds
the sdist and wheel from the tracked files (offline: ``--no-isolation`` with
the dev extra's setuptools), reads the wheel, runs ``twine check``, then
installs the wheel into a folder of its own and runs ``orch demo`` from it,
from a working directory that holds no checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("packaging")
    source = base / "src"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob("*.whl")
    return wheel


def test_the_wheel_holds_only_orchestrator_and_workers(dist: Path) -> None:
    names = zipfile.ZipFile(wheel_of(dist)).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"orchestrator", "workers"}
    assert "orchestrator/examples/document-triage.yaml" in names
    assert "orchestrator/examples/document-publish.yaml" in names
    assert "orchestrator/examples/triage.py" in names
    assert any(n.startswith("orchestrator/scripts/") and n.endswith(".lua") for n in names)
    # the console ships inside the package: `orch serve` works offline from the wheel
    for page in ("index.html", "app.js", "run.js", "dag.js", "gantt.js", "style.css"):
        assert f"orchestrator/console/{page}" in names, page
    assert not [n for n in names if n.startswith(("bench/", "examples/", "tests/"))]


def test_twine_accepts_the_sdist_and_the_wheel(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    assert len(files) == 2
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2


def test_orch_demo_runs_from_the_installed_wheel(dist: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "--target", str(site), str(wheel_of(dist))], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["PYTHONPATH"] = str(site)  # before the checkout's editable install on sys.path
    where = subprocess.run(
        [sys.executable, "-c", "import orchestrator, workers; print(orchestrator.__file__)"],
        env=env, cwd=elsewhere, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(site)), where.stdout
    demo = subprocess.run(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "demo", "-n", "1"],
        env={**env, "COLUMNS": "100"},
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "1/1 documents succeeded" in demo.stdout
    assert "ended COMPENSATED" in demo.stdout
    assert "console: http://127.0.0.1:" in demo.stdout, "the demo tells where to look"
    assert (elsewhere / ".orch").is_dir(), "the embedded Redis kept its data where it ran"
