"""A real Prometheus scrapes a worker's scorecard endpoint and answers the success rate."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from orchestrator import Client, Flow
from orchestrator.embedded import EmbeddedRedis, free_port
from tests.integration.helpers import WAIT
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

QUEUE = "scraped"


@pytest.fixture(scope="module")
def metrics_port(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    port = free_port()
    env = {"ORCH_METRICS_PORT": str(port)}
    pool = WorkerPool(redis_server.url, log_dir=tmp_path_factory.mktemp("scraped"), env=env)
    pool.start([QUEUE], concurrency=1, processes=1)
    yield port
    pool.stop()


@pytest.fixture(scope="module")
def prometheus(metrics_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is needed (.ci/run installs it)"
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    config.write_text(
        # A scrape reads every version active in the last hour (about 8 ms each): in the
        # full suite's shared Redis that is hundreds, so a scrape may take seconds.
        "global: {scrape_interval: 10s, scrape_timeout: 10s, evaluation_interval: 10s}\n"
        "scrape_configs:\n"
        f"  - job_name: orch\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (folder / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield port
        finally:
            proc.terminate()
            proc.wait(30)


def query(port: int, promql: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = json.loads(answer.read())
    except OSError:
        return []  # not up yet
    return list(body["data"]["result"]) if body.get("status") == "success" else []


def test_prometheus_scrapes_the_success_rate(
    prometheus: int, client: Client, wf_name: str, metrics_port: int
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("f", "tests.steps.basic:flaky", queue=QUEUE, retry={"max_attempts": 1})
        .build()
    )
    runs = [client.submit(wf, {"fail_times": n}) for n in (0, 0, 1)]
    assert [r.wait(WAIT)["state"] for r in runs] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    promql = f'orch_scorecard_success_ratio{{workflow="{wf_name}",version="1"}}'
    deadline = time.monotonic() + 90
    found: list[dict[str, object]] = []
    while time.monotonic() < deadline and not found:
        found = query(prometheus, promql)
        time.sleep(0.5)
    assert found, f"Prometheus never had {promql}"
    (sample,) = found
    assert float(sample["value"][1]) == pytest.approx(2 / 3, abs=1e-6)  # type: ignore[index]
    runs_metric = query(prometheus, f'orch_scorecard_runs{{workflow="{wf_name}"}}')
    assert float(runs_metric[0]["value"][1]) == 3  # type: ignore[index]
    page = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    assert b"orch_scorecard_queue_delay_seconds" in page


def test_a_scrape_reads_only_the_versions_active_within_its_window(
    client: Client, wf_name: str, metrics_port: int
) -> None:
    """A version with no run submitted or ended in the last hour is not read at all."""
    wf = (
        Flow(wf_name, 1)
        .step("f", "tests.steps.basic:flaky", queue=QUEUE, retry={"max_attempts": 1})
        .build()
    )
    assert client.submit(wf, {"fail_times": 0}).wait(WAIT)["state"] == "SUCCEEDED"

    def reported() -> bool:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as page:
            lines = page.read().decode().splitlines()
        ours = f'workflow="{wf_name}"'
        return any(x.startswith("orch_scorecard_success_ratio{") and ours in x for x in lines)

    assert reported()
    # Its minutes still hold the run; only its last activity moves back two hours.
    client.redis.zadd(client.store.keys.score_active, {f"{wf_name}:1": time.time() - 7200})
    assert not reported(), "a version quiet for the whole window was read"
