"""The public status document built from a run's internal hash fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.status import rfc3339, status_document
from tests.unit.dags import PROPERTY

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
DOC_KEYS = {
    "id",
    "priority",
    "fairness_key",
    "workflow",
    "version",
    "state",
    "input",
    "result",
    "error",
    "created_at",
    "finished_at",
    "steps",
}
STEP_KEYS = {"state", "attempts", "queued_at", "started_at", "finished_at", "error", "output"}

FIELDS = {
    "wf": "document-triage:3",
    "state": "FAILED",
    "input": '{"url": "https://example.org"}',
    "error": "step 'classify' failed",
    "created_at": "1700000000.25",
    "finished_at": "1700000009",
    "fetch.state": "SUCCEEDED",
    "fetch.att": "1",
    "fetch.q": "1700000000.5",
    "fetch.s": "1700000001",
    "fetch.f": "1700000002.75",
    "fetch.out": '{"text": "hello"}',
    "classify.state": "FAILED",
    "classify.att": "3",
    "classify.err": '{"type": "ValueError", "message": "bad label"}',
    "embed.state": "RUNNING",
    "embed.n": "4",
    "embed.left": "2",
    "embed.out": "[1, 2]",
}
ORDER = ["fetch", "classify", "embed", "store"]


def parse(text: str) -> datetime:
    assert RFC3339_UTC.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def test_document_shape_and_run_fields() -> None:
    doc = status_document("run-1", FIELDS, ORDER)
    assert set(doc) == DOC_KEYS
    assert doc["id"] == "run-1"
    assert doc["workflow"] == "document-triage"
    assert doc["version"] == 3
    assert doc["state"] == "FAILED"
    assert doc["input"] == {"url": "https://example.org"}
    assert doc["result"] is None
    assert doc["error"] == "step 'classify' failed"
    assert parse(doc["created_at"]) == at(1700000000.25)
    assert parse(doc["finished_at"]) == at(1700000009)
    assert list(doc["steps"]) == ORDER
    json.dumps(doc)  # the document is JSON as it stands


def test_step_fields_are_translated() -> None:
    steps = status_document("run-1", FIELDS, ORDER)["steps"]
    fetch = steps["fetch"]
    assert set(fetch) == STEP_KEYS
    assert fetch["state"] == "SUCCEEDED"
    assert fetch["attempts"] == 1
    assert parse(fetch["queued_at"]) == at(1700000000.5)
    assert parse(fetch["started_at"]) == at(1700000001)
    assert parse(fetch["finished_at"]) == at(1700000002.75)
    assert fetch["error"] is None
    assert fetch["output"] == {"text": "hello"}


def test_errors_are_rendered_type_colon_message() -> None:
    classify = status_document("run-1", FIELDS, ORDER)["steps"]["classify"]
    assert classify["error"] == "ValueError: bad label"
    assert classify["attempts"] == 3
    assert classify["started_at"] is None


def test_non_json_errors_are_kept_as_they_are() -> None:
    fields = {**FIELDS, "classify.err": "worker lost", "fetch.err": '"just a string"'}
    steps = status_document("r", fields, ORDER)["steps"]
    assert steps["classify"]["error"] == "worker lost"
    assert steps["fetch"]["error"] == '"just a string"'


def test_missing_steps_are_pending_with_no_attempts() -> None:
    store = status_document("run-1", FIELDS, ORDER)["steps"]["store"]
    assert store == {
        "state": "PENDING",
        "attempts": 0,
        "queued_at": None,
        "started_at": None,
        "finished_at": None,
        "error": None,
        "output": None,
    }


def test_map_steps_report_their_element_count() -> None:
    steps = status_document("run-1", FIELDS, ORDER)["steps"]
    assert steps["embed"]["elements"] == 4
    assert steps["embed"]["elements_left"] == int(FIELDS["embed.left"])
    assert steps["embed"]["output"] == [1, 2]
    assert "elements" not in steps["fetch"]
    partial = {k: v for k, v in FIELDS.items() if k != "embed.left"}
    assert "elements" not in status_document("r", partial, ORDER)["steps"]["embed"]


def test_empty_run_fields_are_null() -> None:
    doc = status_document("r", {"wf": "a.b-c:12", "state": "PENDING", "error": ""}, ["x"])
    assert doc["workflow"] == "a.b-c"
    assert doc["version"] == 12
    assert doc["error"] is None
    assert doc["input"] is None
    assert doc["created_at"] is None
    assert doc["finished_at"] is None
    assert doc["steps"]["x"]["state"] == "PENDING"


def test_rfc3339_examples() -> None:
    assert rfc3339("0") == "1970-01-01T00:00:00.000000Z"
    assert rfc3339("1700000000.5") == "2023-11-14T22:13:20.500000Z"
    assert rfc3339(None) is None
    assert rfc3339("") is None


@PROPERTY
@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_rfc3339_is_utc_with_z_and_round_trips(epoch: float) -> None:
    text = rfc3339(repr(epoch))
    assert text is not None
    assert text.endswith("Z")
    assert "+" not in text
    moment = parse(text)
    assert moment.tzinfo is not None
    assert moment.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs(moment.timestamp() - epoch) <= 1e-6 + abs(epoch) * 1e-15
