"""`orch runs --stuck` from a client whose clock is wrong (libfaketime): Redis's clock decides.

Stored times (events, leases) are Redis ``TIME``. The CLI runs under
``faketime`` 2 h fast and 120 s slow; a run just submitted to a queue nobody
consumes must not be called stuck from the fast clock, and must be found once
it is idle from the slow one. A run whose step holds a live lease on a real
worker is never stuck. Needs Debian's ``faketime`` (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Flow
from tests.cli.test_cli import ROOT
from tests.integration.helpers import Cluster, private_cluster, wait_until

pytestmark = [pytest.mark.integration]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    assert shutil.which("faketime"), "these tests need libfaketime: apt-get install faketime"
    queue = f"clock-{uuid.uuid4().hex[:8]}"
    with private_cluster(tmp_path, queue=queue, processes=1, concurrency=1, lease=5) as c:
        yield c


def stuck_from(cluster: Cluster, offset: str, after: float) -> dict[str, dict[str, Any]]:
    """``orch runs --stuck --json`` run with the local clock shifted by ``offset``."""
    env = {
        **os.environ,
        "ORCH_REDIS_URL": cluster.server.url,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    cmd = ["faketime", "-f", offset, sys.executable, "-m", "orchestrator", "runs", "--stuck"]
    proc = subprocess.run(
        [*cmd, "--stuck-after", f"{after:g}", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return {d["id"]: d for d in json.loads(proc.stdout)}


def skewed_clock(offset: str) -> float:
    """What ``time.time()`` says under ``faketime -f offset`` (the shift is real)."""
    out = subprocess.run(
        ["faketime", "-f", offset, sys.executable, "-c", "import time; print(time.time())"],
        capture_output=True,
        text=True,
        env={**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
        check=True,
    )
    return float(out.stdout) - time.time()


def test_stuck_is_judged_by_redis_time_not_the_clients(cluster: Cluster) -> None:
    assert skewed_clock("+2h") > 7000
    assert skewed_clock("-120") < -100
    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    orphan = cluster.client.submit(
        Flow(f"clock-{uuid.uuid4().hex[:6]}", 1)
        .step("lonely", "tests.steps.basic:noop", queue=nobody)
        .build(),
        {},
    )
    busy = cluster.client.submit(
        Flow(f"busy-{uuid.uuid4().hex[:6]}", 1)
        .step("nap", "tests.steps.basic:sleepy", queue=cluster.queue)
        .build(),
        {"delay": 15.0},
    )
    wait_until(lambda: busy.status()["steps"]["nap"]["state"] == "RUNNING", timeout=60)

    fast = stuck_from(cluster, "+2h", after=600)
    assert orphan.id not in fast, f"a seconds-old run called stuck: {fast.get(orphan.id)}"
    assert busy.id not in fast

    time.sleep(3.0)  # the orphan is now idle 3 s by Redis's clock
    slow = stuck_from(cluster, "-120", after=2)
    assert orphan.id in slow, f"a stuck run missed from a slow clock: {sorted(slow)}"
    found = re.match(r"no progress for (\d+)s", slow[orphan.id]["stuck"])
    assert found is not None, slow[orphan.id]["stuck"]
    assert 2 <= int(found[1]) < 100, slow[orphan.id]["stuck"]  # not shifted by the skew
    assert busy.id not in slow, "a step holding a live lease is progress"
    busy.cancel()
