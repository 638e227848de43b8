"""The HTTP API against real Redis and workers: every Client capability, its documents
(the CLI's --json ones) and its errors (problem details with the CLI's one-line messages)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from orchestrator import Client
from orchestrator.api import models
from orchestrator.scorecard.model import Scorecard
from tests.api import specs

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def wait_state(http: httpx.Client, run_id: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = http.get(f"/api/runs/{run_id}").json()
        if done(doc):
            return doc
        assert time.monotonic() < deadline, f"run {run_id} stayed {doc['state']}"
        time.sleep(0.05)


def ended(doc: dict[str, Any]) -> bool:
    return doc["state"] in {"SUCCEEDED", "FAILED", "CANCELLED", "COMPENSATED"}


def submit(http: httpx.Client, workflow: Any, **body: Any) -> str:
    resp = http.post("/api/runs", json={"workflow": workflow, **body})
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"/api/runs/{resp.json()['id']}"
    return str(resp.json()["id"])


def assert_problem(resp: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM
    doc = resp.json()
    assert doc["status"] == status and doc["type"] == "about:blank" and doc["title"]
    assert "\n" not in doc["detail"]
    for fragment in fragments:
        assert fragment in doc["detail"], doc["detail"]
    return dict(doc)


def test_submit_a_spec_then_follow_it_as_the_cli_does(
    http: httpx.Client, client: Client, wf_name: str
) -> None:
    run_id = submit(http, specs.branches(wf_name), input={"value": 1})
    doc = wait_state(http, run_id, ended)
    assert doc == client.run(run_id).status(), "the body is the status document"
    assert doc["state"] == "SUCCEEDED"
    assert doc["steps"]["big"]["state"] == "SKIPPED"
    assert doc["steps"]["tolerant"]["state"] == "SUCCEEDED"
    events = http.get(f"/api/runs/{run_id}/events").json()
    assert events == client.run(run_id).events()
    assert any(e.get("step") == "big" and e.get("to") == "SKIPPED" for e in events)
    # by name now that it is registered, newest version and pinned version alike
    again = submit(http, wf_name, input={"value": 50})
    assert wait_state(http, again, ended)["steps"]["big"]["state"] == "SUCCEEDED"
    pinned = submit(http, f"{wf_name}:1", input={"value": 1})
    assert wait_state(http, pinned, ended)["version"] == 1


def test_idempotency_key_in_body_or_header_gives_the_same_run(
    http: httpx.Client, wf_name: str
) -> None:
    first = submit(http, specs.branches(wf_name), key="order-7")
    assert submit(http, specs.branches(wf_name), key="order-7") == first
    resp = http.post(
        "/api/runs", json={"workflow": wf_name}, headers={"Idempotency-Key": "order-7"}
    )
    assert resp.json()["id"] == first
    other = submit(http, wf_name, key="order-8")
    assert other != first
    resp = http.post(
        "/api/runs",
        json={"workflow": wf_name, "key": "a"},
        headers={"Idempotency-Key": "b"},
    )
    assert_problem(resp, 422, "differ")


def test_concurrent_submits_each_get_their_own_answer(http: httpx.Client, wf_name: str) -> None:
    """Submits made together share a Redis pipeline: each request still gets its own run,
    the same key one run, and a refused submit its own problem, whatever the others do."""
    submit(http, specs.branches(wf_name))  # registered first: the rest name it
    bodies: list[dict[str, Any]] = [{"workflow": wf_name, "key": "together"} for _ in range(12)]
    bodies += [{"workflow": wf_name, "input": {"value": i}} for i in range(12)]
    bodies += [{"workflow": wf_name, "deadline": "soonish"} for _ in range(12)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda body: http.post("/api/runs", json=body), bodies))
    keyed = {r.json()["id"] for r in answers[:12] if r.status_code == 201}
    assert len(keyed) == 1 and all(r.status_code == 201 for r in answers[:12])
    own = [r.json()["id"] for r in answers[12:24]]
    assert len(set(own)) == 12 and not keyed & set(own)
    for r in answers[24:]:
        assert_problem(r, 422, "deadline")
    for run_id in [*keyed, *own]:
        assert http.get(f"/api/runs/{run_id}").json()["workflow"] == wf_name


def test_listing_filters_by_workflow_and_state(http: httpx.Client, wf_name: str) -> None:
    ok = submit(http, specs.branches(wf_name))
    wait_state(http, ok, ended)
    failed = submit(http, specs.failing(wf_name + "-f"))
    wait_state(http, failed, ended)
    mine = http.get("/api/runs", params={"workflow": wf_name}).json()
    assert [r["id"] for r in mine] == [ok]
    assert "steps" not in mine[0], "the listing is `orch runs --json`: no steps"
    states = http.get("/api/runs", params={"state": "FAILED", "limit": 1000}).json()
    assert failed in [r["id"] for r in states] and ok not in [r["id"] for r in states]
    assert_problem(http.get("/api/runs", params={"state": "NOPE"}), 422, "state")
    assert_problem(http.get("/api/runs", params={"limit": 0}), 422, "limit")


def test_signal_completes_a_waiting_step(http: httpx.Client, wf_name: str) -> None:
    run_id = submit(http, specs.approval(wf_name), input={"value": 3})
    wait_state(http, run_id, lambda d: d["steps"]["review"]["state"] == "WAITING")
    assert_problem(
        http.post(f"/api/runs/{run_id}/signals/nope", json={"data": 1}),
        404,
        "no step of",
        "waits for signal 'nope'",
    )
    resp = http.post(
        f"/api/runs/{run_id}/signals/approval", json={"data": {"approved": True, "by": "ana"}}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": run_id, "signal": "approval", "completed": ["review"]}
    doc = wait_state(http, run_id, ended)
    assert doc["state"] == "SUCCEEDED"
    assert doc["steps"]["publish"]["output"] == "published 3 approved=True by ana"
    again = http.post(f"/api/runs/{run_id}/signals/approval", json={"data": None})
    assert_problem(again, 409, f"run {run_id}")


def test_cancel_a_saga_compensates_its_completed_steps(http: httpx.Client, wf_name: str) -> None:
    run_id = submit(http, specs.saga(wf_name))
    wait_state(http, run_id, lambda d: d["steps"]["b"]["state"] == "RUNNING")
    resp = http.post(f"/api/runs/{run_id}/cancel", json={"reason": "test"})
    assert resp.status_code == 200 and resp.json()["id"] == run_id
    assert resp.json()["state"] in {"CANCELLING", "CANCELLED"}
    doc = wait_state(http, run_id, lambda d: d["state"] == "CANCELLED")
    assert doc["steps"]["a"]["state"] == "COMPENSATED"
    assert http.post(f"/api/runs/{run_id}/cancel").json()["state"] == "CANCELLED"


def test_retry_resumes_a_failed_run_and_refuses_others(http: httpx.Client, wf_name: str) -> None:
    run_id = submit(http, specs.failing(wf_name))
    assert wait_state(http, run_id, ended)["state"] == "FAILED"
    resp = http.post(f"/api/runs/{run_id}/retry")
    assert resp.status_code == 201, resp.text
    new = resp.json()
    assert new["resumed_from"] == run_id and new["id"] != run_id
    assert http.get(f"/api/runs/{new['id']}").status_code == 200
    ok = submit(http, specs.branches(wf_name + "-ok"))
    wait_state(http, ok, ended)
    assert_problem(http.post(f"/api/runs/{ok}/retry"), 409, "only a FAILED run can be resumed")
    assert_problem(http.post(f"/api/runs/{ok}/compensate"), 409, "no failed compensation")


def test_workflow_documents_match_the_cli(http: httpx.Client, wf_name: str) -> None:
    run_id = submit(http, specs.branches(wf_name), input={"value": 1})
    wait_state(http, run_id, ended)
    listed = http.get("/api/workflows").json()
    assert {"name": wf_name, "versions": [1]} in listed
    info = http.get(f"/api/workflows/{wf_name}").json()
    assert info["name"] == wf_name and [v["version"] for v in info["versions"]] == [1]
    base = f"/api/workflows/{wf_name}/versions/1"
    valid = http.get(f"{base}/validate").json()
    assert valid["valid"] is True and valid["steps"] == 4
    plan = http.get(f"{base}/plan").json()
    assert plan["steps"]["tolerant"]["after"] == ["big", "emit"]
    assert http.get(f"/api/runs/{run_id}/plan").json() == plan, "a run's plan is its version's"
    assert_problem(http.get("/api/runs/no-such-run/plan"), 404, "no-such-run")
    graph = http.get(f"{base}/graph").json()
    assert {"from": "emit", "to": "big", "map": False} in graph["edges"]
    coverage = http.get(f"{base}/coverage").json()
    assert "big → after_big" in coverage["never_taken"]
    assert coverage["taken"] < coverage["edges"]
    assert_problem(http.get(f"/api/workflows/{wf_name}/versions/9/plan"), 404, "no version 9")


def test_validate_a_spec_without_registering_it(http: httpx.Client, wf_name: str) -> None:
    resp = http.post("/api/workflows/validate", json={"workflow": specs.mapped(wf_name)})
    assert resp.status_code == 200 and resp.json()["steps"] == 3
    assert http.get(f"/api/workflows/{wf_name}").status_code == 404
    bad = specs.mapped(wf_name)
    bad["steps"]["square"]["after"] = ["nope"]
    assert_problem(
        http.post("/api/workflows/validate", json={"workflow": bad}),
        422,
        "step 'square', field 'after': unknown step 'nope'",
    )


def test_only_steps_inside_the_allow_list_may_be_submitted(
    http: httpx.Client, wf_name: str
) -> None:
    outside = {"name": wf_name, "version": 1, "steps": {"sh": {"task": "os:system"}}}
    assert_problem(
        http.post("/api/runs", json={"workflow": outside}), 403, "'os:system'", "ORCH_TASK_MODULES"
    )
    not_a_step = {"name": wf_name, "version": 1, "steps": {"x": {"task": f"{specs.B}:record"}}}
    assert_problem(http.post("/api/runs", json={"workflow": not_a_step}), 403, "is not a step")
    missing = {"name": wf_name, "version": 1, "steps": {"x": {"task": "tests.steps.nope:f"}}}
    assert_problem(http.post("/api/runs", json={"workflow": missing}), 403, "cannot be imported")
    assert http.get(f"/api/workflows/{wf_name}").status_code == 404, "nothing was registered"


def test_a_workflow_name_is_never_read_as_a_file(http: httpx.Client) -> None:
    for name in ("../etc/passwd", "/etc/hosts", "pyproject.toml"):
        resp = http.post("/api/runs", json={"workflow": name})
        assert_problem(resp, 404)


def test_errors_are_problems_with_the_cli_messages(http: httpx.Client, wf_name: str) -> None:
    doc = assert_problem(http.get("/api/runs/0000"), 404, "run '0000' not found")
    assert doc["exit_code"] == 2
    assert_problem(http.post("/api/runs", json={"input": {}}), 422, "workflow")
    assert_problem(
        http.post("/api/runs", content=b"{", headers={"content-type": "application/json"}), 422
    )
    assert_problem(
        http.post("/api/runs", json={"workflow": wf_name, "surprise": 1}), 422, "surprise"
    )
    bad_spec = {"name": wf_name, "version": 0, "steps": {}}
    assert_problem(http.post("/api/runs", json={"workflow": bad_spec}), 422, "version")


def test_metrics_is_the_scorecard_of_orch_metrics(
    http: httpx.Client, client: Client, wf_name: str
) -> None:
    run_id = submit(http, specs.branches(wf_name))
    wait_state(http, run_id, ended)
    card = http.get("/api/metrics", params={"workflow": wf_name}).json()
    expected = client.metrics(wf_name).model_dump(mode="json")
    assert card["versions"][0]["current"]["runs"] == 1
    assert card["versions"][0]["workflow"] == expected["versions"][0]["workflow"] == wf_name
    assert_problem(http.get("/api/metrics", params={"workflow": wf_name + "-never"}), 404)
    assert_problem(http.get("/api/metrics", params={"window": "2y"}), 422, "window")


def test_map_steps_report_element_progress(http: httpx.Client, wf_name: str) -> None:
    run_id = submit(http, specs.mapped(wf_name), input={"n": 5})
    doc = wait_state(http, run_id, ended)
    square = doc["steps"]["square"]
    assert square["elements"] == 5 and square["elements_left"] == 0
    assert doc["steps"]["sum_list"]["output"] == sum(k * k for k in range(5))


def test_real_documents_fit_the_openapi_models(http: httpx.Client, wf_name: str) -> None:
    """schemathesis mostly meets unknown ids; here real, full documents meet the models."""
    run_id = submit(http, specs.mapped(wf_name), input={"n": 3})
    wait_state(http, run_id, ended)
    base = f"/api/workflows/{wf_name}/versions/1"
    models.RunStatus.model_validate(http.get(f"/api/runs/{run_id}").json())
    for summary in http.get("/api/runs").json():
        models.RunSummary.model_validate(summary)
    models.Plan.model_validate(http.get(f"{base}/plan").json())
    models.Graph.model_validate(http.get(f"{base}/graph").json())
    models.Coverage.model_validate(http.get(f"{base}/coverage").json())
    models.WorkflowInfo.model_validate(http.get(f"/api/workflows/{wf_name}").json())
    Scorecard.model_validate(http.get("/api/metrics", params={"workflow": wf_name}).json())


def test_health_and_openapi(http: httpx.Client) -> None:
    assert http.get("/api/health").json() == {"ok": True}
    doc = http.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/runs", "/api/runs/{run_id}/signals/{name}", "/api/metrics"):
        assert path in paths
    problem = paths["/api/runs/{run_id}"]["get"]["responses"]["404"]["content"]
    assert list(problem) == [PROBLEM]


def test_the_queueing_model_over_http(http: httpx.Client, wf_name: str) -> None:
    """Priority, fairness key and deadline pass through submit; /api/queues is `orch queues
    --json`; a refused submit is a 429 problem with the CLI's exit 4."""
    stuck = {
        "name": wf_name,
        "version": 1,
        "max_queued": 1,
        "steps": {"emit": {"task": "tests.steps.basic:emit", "queue": f"nobody-{wf_name}"}},
    }
    tenant = f"tenant-{wf_name}"  # the session's Redis is shared: a key of this test's own
    run_id = submit(http, stuck, priority=7, fairness_key=tenant, deadline="1h")
    doc = http.get(f"/api/runs/{run_id}").json()
    assert (doc["priority"], doc["fairness_key"]) == (7, tenant)
    assert doc["deadline_at"] is not None
    queues = http.get("/api/queues").json()
    rows = [r for r in queues["queues"] if r["queue"] == f"nobody-{wf_name}"]
    assert [(r["priority"], r["depth"]) for r in rows] == [(7, 1)]
    assert {"workflow": wf_name, "waiting": 1} in [
        {"workflow": b["workflow"], "waiting": b["waiting"]} for b in queues["backlogs"]
    ]
    refused = http.post("/api/runs", json={"workflow": stuck, "input": {"value": 2}})
    problem = assert_problem(refused, 429, "submit refused", "max_queued=1")
    assert problem["exit_code"] == 4
    again = http.post("/api/runs", json={"workflow": wf_name, "priority": 10})
    assert_problem(again, 422, "priority")
    http.post(f"/api/runs/{run_id}/cancel")


def test_schedules_over_http(http: httpx.Client, wf_name: str) -> None:
    """Schedules as `orch schedule ... --json`: add, list, get, pause, resume, remove."""
    assert submit(http, specs.branches(wf_name))  # registers the workflow
    name = f"s-{wf_name}"
    body = {"name": name, "workflow": wf_name, "cron": "0 3 * * *", "tz": "Europe/Paris"}
    made = http.post("/api/schedules", json=body)
    assert made.status_code == 201, made.text
    doc = made.json()
    assert (doc["workflow"], doc["tz"], doc["paused"]) == (f"{wf_name}:1", "Europe/Paris", False)
    next_at = datetime.fromisoformat(doc["next_at"].replace("Z", "+00:00"))
    assert next_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") == "03:00"
    assert name in [s["name"] for s in http.get("/api/schedules").json()]
    assert_problem(http.post("/api/schedules", json=body), 409, "exists")
    assert http.post(f"/api/schedules/{name}/pause").json() == {"name": name, "changed": True}
    assert http.post(f"/api/schedules/{name}/pause").json()["changed"] is False
    assert http.get(f"/api/schedules/{name}").json()["paused"] is True
    assert http.post(f"/api/schedules/{name}/resume").json()["changed"] is True
    assert http.delete(f"/api/schedules/{name}").json()["changed"] is True
    assert_problem(http.get(f"/api/schedules/{name}"), 404, "not found")
    bad = {**body, "cron": "61 * * * *"}
    assert_problem(http.post("/api/schedules", json=bad), 422)
    assert_problem(http.post("/api/schedules", json={**body, "workflow": wf_name + "-no"}), 404)
