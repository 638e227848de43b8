"""Step functions: typed handoffs, the payload cap and the idempotency key."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import (
    HandoffError,
    NonRetryableError,
    PayloadTooLargeError,
    SpecError,
    TaskRefusedError,
)
from orchestrator.steps import StepContext, StepFunction, encode_output, import_task
from tests.unit import stepfns
from tests.unit.dags import PROPERTY

CTX = StepContext(run_id="r1", workflow="triage", version=3, step="classify", attempt=1)
DOC = {"url": "https://example.org", "text": "a b c d"}


def classify() -> StepFunction:
    return StepFunction.wrap(stepfns.classify)


# --- the contract derived from the signature ---------------------------------


def test_decorator_precomputes_the_contract() -> None:
    fn = classify()
    assert fn is stepfns.classify.__orch_step__  # type: ignore[attr-defined]
    assert fn.func is stepfns.classify
    assert fn.path == "tests.unit.stepfns:classify"
    assert [p.name for p in fn.params] == ["fetch", "threshold", "prefix"]
    assert fn.wants_context
    assert fn.params_required() == ["fetch", "threshold"]
    assert fn.param_names == frozenset({"fetch", "threshold", "prefix"})


def test_wrap_of_an_undecorated_function() -> None:
    fn = StepFunction.wrap(stepfns.untyped)
    assert not fn.wants_context
    assert fn.params_required() == ["fetch"]
    assert all(p.adapter is None for p in fn.params)
    assert fn.path == "tests.unit.stepfns:untyped"


# --- bind ---------------------------------------------------------------------


def test_bind_validates_a_dict_into_the_model() -> None:
    kwargs = classify().bind("classify", {"fetch": DOC}, {"threshold": "3"}, CTX)
    assert set(kwargs) == {"fetch", "threshold", "ctx"}
    assert isinstance(kwargs["fetch"], stepfns.Document)
    assert kwargs["fetch"].text == "a b c d"
    assert kwargs["threshold"] == 3
    assert isinstance(kwargs["threshold"], int)
    assert kwargs["ctx"] is CTX
    assert stepfns.classify(**kwargs) == "label:True:r1/classify"


def test_bind_accepts_a_model_instance_and_fills_defaults_from_input() -> None:
    doc = stepfns.Document(**DOC)
    kwargs = classify().bind("classify", {"fetch": doc}, {"threshold": 10, "prefix": "p"}, CTX)
    assert kwargs["fetch"] == doc
    assert kwargs["prefix"] == "p"
    assert stepfns.classify(**kwargs) == "p:False:r1/classify"


def test_upstream_output_wins_over_an_input_field_of_the_same_name() -> None:
    other = {"url": "u", "text": "from input"}
    kwargs = classify().bind("classify", {"fetch": DOC}, {"fetch": other, "threshold": 1}, CTX)
    assert kwargs["fetch"].text == "a b c d"


def test_handoff_mismatch_names_the_edge() -> None:
    with pytest.raises(HandoffError) as info:
        classify().bind("classify", {"fetch": {"url": "u"}}, {"threshold": 1}, CTX)
    err = info.value
    assert "handoff fetch → classify" in str(err)
    assert err.edge == "fetch → classify"
    assert "text" in str(err), "the failing location is named"
    assert "\n" not in str(err)
    assert isinstance(err, NonRetryableError), "a bad handoff is not retried"


@pytest.mark.parametrize("bad", ["not a document", 42, [DOC], {"url": 1, "text": "t"}])
def test_every_wrong_shape_is_a_handoff_error(bad: Any) -> None:
    with pytest.raises(HandoffError) as info:
        classify().bind("classify", {"fetch": bad}, {"threshold": 1}, CTX)
    assert info.value.edge == "fetch → classify"


def test_input_mismatch_names_the_input_edge() -> None:
    with pytest.raises(HandoffError) as info:
        classify().bind("classify", {"fetch": DOC}, {"threshold": "many"}, CTX)
    assert info.value.edge == "input.threshold → classify"
    assert "handoff input.threshold → classify" in str(info.value)


def test_missing_parameter_is_non_retryable_and_named() -> None:
    with pytest.raises(NonRetryableError) as info:
        classify().bind("classify", {"fetch": DOC}, {}, CTX)
    assert not isinstance(info.value, HandoffError)
    assert "'threshold'" in str(info.value)
    assert "'classify'" in str(info.value)


def test_context_is_passed_only_when_asked_for() -> None:
    kwargs = StepFunction.wrap(stepfns.fetch).bind("fetch", {}, {"url": "u"}, CTX)
    assert kwargs == {"url": "u"}
    kwargs = classify().bind("classify", {"fetch": DOC}, {"threshold": 1}, None)
    assert kwargs["ctx"] is None


def test_unannotated_parameters_pass_through() -> None:
    value = object()
    kwargs = StepFunction.wrap(stepfns.untyped).bind("s", {"fetch": value}, {}, CTX)
    assert kwargs == {"fetch": value}


def test_skipped_upstream_arrives_as_none_when_the_default_is_none() -> None:
    fn = StepFunction.wrap(stepfns.optional_upstream)
    assert fn.bind("s", {"fetch": None}, {}, CTX) == {"fetch": None}
    assert isinstance(fn.bind("s", {"fetch": DOC}, {}, CTX)["fetch"], stepfns.Document)
    assert fn.bind("s", {}, {}, CTX) == {}


def test_list_handoff_validates_each_element() -> None:
    fn = StepFunction.wrap(stepfns.chunk)
    with pytest.raises(HandoffError) as info:
        fn.bind("chunk", {"fetch": {"url": "u", "text": ["not", "a", "str"]}}, {}, CTX)
    assert info.value.edge == "fetch → chunk"


# --- import_task ----------------------------------------------------------------


def test_import_task() -> None:
    assert import_task("tests.unit.stepfns:fetch") is stepfns.fetch
    with pytest.raises(TaskRefusedError, match="is not a step"):
        import_task("tests.unit.stepfns:Document.model_validate")
    with pytest.raises(SpecError, match=re.escape("cannot import 'nonexistent.module:fn'")):
        import_task("nonexistent.module:fn", where="step 'a', field 'task'")
    with pytest.raises(SpecError, match="not callable"):
        import_task("tests.unit.stepfns:NOT_CALLABLE")
    with pytest.raises(SpecError, match="AttributeError"):
        import_task("tests.unit.stepfns:missing")


# --- payload cap ----------------------------------------------------------------


def test_encode_output_at_and_above_the_limit() -> None:
    value = "x" * 8  # 10 bytes of JSON with the quotes
    assert encode_output(value, limit=10, what="step 'a'") == '"xxxxxxxx"'
    with pytest.raises(PayloadTooLargeError) as info:
        encode_output(value, limit=9, what="step 'a'")
    message = str(info.value)
    assert "step 'a'" in message
    assert "10 bytes" in message
    assert "9" in message and "ORCH_MAX_PAYLOAD_BYTES" in message


def test_limit_counts_bytes_not_characters() -> None:
    value = "é" * 4  # 4 characters, 8 bytes in UTF-8, 10 with the quotes
    assert json.loads(encode_output(value, limit=10, what="s")) == value
    with pytest.raises(PayloadTooLargeError, match="10 bytes"):
        encode_output(value, limit=9, what="s")


def test_models_are_encoded_as_json() -> None:
    doc = stepfns.Document(**DOC)
    assert json.loads(encode_output(doc, limit=1000, what="s")) == DOC


def test_unserialisable_output_is_non_retryable() -> None:
    with pytest.raises(NonRetryableError, match="not JSON-serialisable"):
        encode_output(object(), limit=1000, what="s")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)


@PROPERTY
@given(json_values, st.integers(1, 400))
def test_encode_output_never_truncates(value: Any, limit: int) -> None:
    try:
        text = encode_output(value, limit=limit, what="s")
    except PayloadTooLargeError as exc:
        size = int(str(exc).split("output is ")[1].split(" bytes")[0])
        assert size > limit
        full = encode_output(value, limit=10**9, what="s")
        assert size == len(full.encode())
        assert json.loads(full) == value
    else:
        assert json.loads(text) == value
        assert len(text.encode()) <= limit


# --- idempotency key --------------------------------------------------------------


def test_idempotency_key_is_stable_across_attempts_and_workers() -> None:
    keys = {
        StepContext("r1", "wf", 1, "embed", attempt, worker=w).idempotency_key
        for attempt in (1, 2, 7)
        for w in ("", "w1@host", "w2@host")
    }
    assert keys == {"r1/embed"}


def test_idempotency_key_includes_the_index_when_set() -> None:
    assert StepContext("r1", "wf", 1, "embed", 1, index=0).idempotency_key == "r1/embed/0"
    assert StepContext("r1", "wf", 1, "embed", 3, index=12).idempotency_key == "r1/embed/12"


@PROPERTY
@given(
    st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
    st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_idempotency_keys_differ_for_different_work(
    a: tuple[str, str], b: tuple[str, str], i: int | None, j: int | None
) -> None:
    # Run ids and step names as the product makes them contain no '/'.
    a = (a[0].replace("/", "_"), a[1].replace("/", "_"))
    b = (b[0].replace("/", "_"), b[1].replace("/", "_"))
    ka = StepContext(a[0], "wf", 1, a[1], 1, index=i).idempotency_key
    kb = StepContext(b[0], "wf", 1, b[1], 2, index=j).idempotency_key
    assert (ka == kb) == (a == b and i == j)
