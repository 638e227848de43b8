"""Engine hooks: no-op defaults, dispatch by event type, isolation of failing hooks, loading."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import typing

import pytest

from orchestrator import hooks as hooks_module
from orchestrator.errors import EXIT_USAGE, SpecError
from orchestrator.hooks import (
    Admission,
    AttemptFinished,
    AttemptStarted,
    HookChain,
    Hooks,
    Outcome,
    RunEvent,
    RunFinished,
    RunSubmitted,
    StepClaimed,
    load_hooks,
)
from orchestrator.settings import Settings
from tests.unit import hookdefs
from tests.unit.hookdefs import Boom, DuckFinished, Interrupting, Recorder, sample_event

#: Every event type the module defines, found by looking, so a new one is covered at once.
EVENTS: list[type[RunEvent]] = [
    cls
    for _, cls in inspect.getmembers(hooks_module, inspect.isclass)
    if issubclass(cls, RunEvent) and "hook" in vars(cls)
]

#: The Hooks methods that receive events.
METHODS = [
    name for name, fn in inspect.getmembers(Hooks, inspect.isfunction) if name.startswith("on_")
]

HOOKS_LOG = "orchestrator.hooks"


def test_the_module_defines_the_events_of_the_contract() -> None:
    names = {cls.__name__ for cls in EVENTS}
    assert len(EVENTS) == 12
    assert {"RunSubmitted", "StepClaimed", "AttemptStarted", "AttemptFinished"} <= names
    assert {"RetryScheduled", "BudgetDenied", "BreakerChanged", "WaitStarted"} <= names
    assert {"WaitEnded", "CompensationStarted", "CompensationFinished", "RunFinished"} <= names


# --- completeness ---------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENTS, ids=lambda c: c.__name__)
def test_each_event_names_a_hooks_method_that_takes_it(event_type: type[RunEvent]) -> None:
    assert event_type.hook in METHODS
    method = getattr(Hooks, event_type.hook)
    assert typing.get_type_hints(method)["event"] is event_type


def test_every_hooks_method_receives_exactly_one_event_type() -> None:
    receivers = {name: [cls for cls in EVENTS if cls.hook == name] for name in METHODS}
    assert {name: len(found) for name, found in receivers.items()} == dict.fromkeys(METHODS, 1)


@pytest.mark.parametrize("event_type", EVENTS, ids=lambda c: c.__name__)
def test_every_event_carries_the_run_identity(event_type: type[RunEvent]) -> None:
    fields = {f.name for f in dataclasses.fields(event_type)}
    assert {"run_id", "workflow", "version"} <= fields
    assert event_type.__doc__, "each event says when it fires"


# --- defaults and dispatch ------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENTS, ids=lambda c: c.__name__)
def test_default_hooks_accept_every_event(
    event_type: type[RunEvent], caplog: pytest.LogCaptureFixture
) -> None:
    event = sample_event(event_type)
    assert getattr(Hooks(), event_type.hook)(event) is None
    with caplog.at_level(logging.DEBUG, logger=HOOKS_LOG):
        HookChain([Hooks()]).emit(event)
    assert caplog.records == []


@pytest.mark.parametrize("event_type", EVENTS, ids=lambda c: c.__name__)
def test_each_event_reaches_only_its_own_method(event_type: type[RunEvent]) -> None:
    calls: list[tuple[str, RunEvent]] = []

    def recorder(name: str) -> typing.Callable[[Hooks, RunEvent], None]:
        return lambda _self, event: calls.append((name, event))

    everything = type("Everything", (Hooks,), {name: recorder(name) for name in METHODS})
    event = sample_event(event_type)
    HookChain([everything()]).emit(event)
    assert calls == [(event_type.hook, event)]
    assert calls[0][1] is event


def test_an_override_receives_the_event_and_the_rest_stay_no_ops() -> None:
    recorder = Recorder()
    chain = HookChain([recorder])
    finished = sample_event(AttemptFinished, outcome=Outcome.RETRYING, error="flaky")
    chain.emit(sample_event(RunSubmitted))
    chain.emit(finished)
    chain.emit(sample_event(AttemptStarted))
    assert recorder.seen == [finished]
    assert isinstance(finished, AttemptFinished)
    assert finished.outcome == "retrying"


def test_hooks_run_in_order() -> None:
    first, second = Recorder(), Recorder()
    order: list[Recorder] = []
    first.on_run_finished = lambda event: order.append(first)  # type: ignore[method-assign]
    second.on_run_finished = lambda event: order.append(second)  # type: ignore[method-assign]
    HookChain([first, second]).emit(sample_event(RunFinished))
    assert order == [first, second]


def test_a_raising_hook_is_logged_and_the_next_hook_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom, recorder = Boom(), Recorder()
    chain = HookChain([boom, recorder])
    started = sample_event(AttemptStarted, run_id="r-42", step="embed")
    finished = sample_event(AttemptFinished)
    with caplog.at_level(logging.ERROR, logger=HOOKS_LOG):
        chain.emit(started)  # does not raise
        chain.emit(finished)
        chain.emit(started)
    assert boom.calls == 2, "a hook that raised is still called for later events"
    assert recorder.seen == [finished]
    errors = [r for r in caplog.records if r.name == HOOKS_LOG]
    assert len(errors) == 2
    message = errors[0].getMessage()
    assert "tests.unit.hookdefs.Boom" in message
    assert "on_attempt_started" in message
    assert "AttemptStarted" in message
    assert "r-42" in message
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == "boom on embed"


def test_a_hook_after_a_raising_one_still_sees_the_event() -> None:
    recorder = Recorder()
    event = sample_event(AttemptFinished)
    broken = type("Broken", (Hooks,), {"on_attempt_finished": lambda self, e: 1 / 0})
    HookChain([broken(), recorder]).emit(event)
    assert recorder.seen == [event]


def test_stopping_the_process_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        HookChain([Interrupting()]).emit(sample_event(RunFinished))


def test_duck_typed_hooks_get_what_they_define_and_nothing_else() -> None:
    duck = DuckFinished()
    chain = HookChain([object(), duck, "not a hook"])
    finished = sample_event(RunFinished, state="SUCCEEDED", error=None)
    for event_type in EVENTS:
        if event_type is not RunFinished:
            chain.emit(sample_event(event_type))
    chain.emit(finished)
    assert duck.seen == [finished]


def test_an_empty_chain_is_falsy_so_callers_can_skip_building_events() -> None:
    assert not HookChain()
    assert not HookChain([])
    assert HookChain([Hooks()])
    assert HookChain(iter([Recorder()])).hooks != ()


def test_a_hook_that_says_it_is_disabled_is_left_out_of_the_chain() -> None:
    off, on = Recorder(), Recorder()
    off.enabled = False  # type: ignore[attr-defined]
    assert not HookChain([off])
    chain = HookChain([off, on])
    assert chain.hooks == (on,)
    chain.emit(sample_event(AttemptFinished))
    assert off.seen == [] and len(on.seen) == 1


def test_wants_says_whether_any_hook_receives_an_event_method() -> None:
    chain = HookChain([DuckFinished()])
    assert chain.wants("on_run_finished")
    assert not chain.wants("on_attempt_finished")
    assert HookChain([DuckFinished(), Recorder()]).wants("on_attempt_finished")
    assert not HookChain().wants("on_run_finished")


def test_a_subclass_receives_only_the_events_it_overrides() -> None:
    class Finishes(Hooks):
        def __init__(self) -> None:
            self.seen: list[RunEvent] = []

        def on_attempt_finished(self, event: AttemptFinished) -> None:
            self.seen.append(event)

    hook = Finishes()
    chain = HookChain([hook])
    assert chain.wants("on_attempt_finished")
    assert not chain.wants("on_attempt_started"), "an inherited no-op is not a receiver"
    assert not chain.wants("propagate") and chain.propagate() == {}
    assert not HookChain([Hooks()]).wants("on_run_finished")
    chain.emit(sample_event(AttemptFinished))
    chain.emit(sample_event(StepClaimed, admission=Admission.RUN))
    assert [type(e) for e in hook.seen] == [AttemptFinished]


def _event_types(cls: type[RunEvent] = RunEvent) -> list[type[RunEvent]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _event_types(sub)
    return found


@pytest.mark.parametrize("cls", _event_types(), ids=lambda c: c.__name__)
def test_each_event_init_sets_every_field_as_the_dataclass_would(cls: type[RunEvent]) -> None:
    """Events set their fields in one step (hooks_events._set_at_once); nothing else changes."""
    fields = dataclasses.fields(cls)
    event = sample_event(cls)
    given = {f.name: getattr(sample_event(cls), f.name) for f in fields}
    assert {f.name: getattr(event, f.name) for f in fields} == given
    assert set(vars(event)) == {f.name for f in fields}, "no field missing, nothing extra"
    required = {n: v for n, v in given.items() if _required(cls, n)}
    bare, other = cls(**required), cls(**required)
    for f in fields:
        if f.default is not dataclasses.MISSING:
            assert getattr(bare, f.name) == f.default
        elif f.default_factory is not dataclasses.MISSING:
            assert getattr(bare, f.name) == f.default_factory()
            assert getattr(bare, f.name) is not getattr(other, f.name), "a fresh one each time"
    with pytest.raises(TypeError, match="missing"):
        cls(**dict(list(required.items())[1:]))
    with pytest.raises(TypeError, match="unexpected keyword"):
        cls(**required, surplus=1)
    with pytest.raises(TypeError, match="positional"):
        cls(*required.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, fields[0].name, "changed")
    assert event == cls(**given) and repr(event).startswith(f"{cls.__name__}(run_id=")


def test_an_event_init_refuses_what_it_would_silently_skip() -> None:
    """``_set_at_once`` writes the fields' values in one step: a field the generated init
    would compute (``init=False``) or a ``__post_init__`` would be skipped, so it refuses."""
    from orchestrator.hooks_events import _set_at_once

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Computed(RunFinished):
        extra: int = dataclasses.field(default=0, init=False)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Checked(RunFinished):
        def __post_init__(self) -> None:
            pass

    for cls in (Computed, Checked):
        with pytest.raises(TypeError, match="_set_at_once supports neither"):
            _set_at_once(cls)


def _required(cls: type[RunEvent], name: str) -> bool:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def test_events_are_frozen_and_keyword_only() -> None:
    event = sample_event(StepClaimed, admission=Admission.WAIT_RATE, wait=1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.run_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunFinished("r", "wf", 1, "FAILED", None)  # type: ignore[call-arg]
    assert isinstance(event, StepClaimed)
    assert event.admission == "wait_rate"


def test_step_claimed_waits_nothing_unless_told() -> None:
    claimed = StepClaimed(
        run_id="r",
        workflow="wf",
        version=1,
        step="s",
        index=None,
        attempt=1,
        worker="w",
        admission=Admission.RUN,
        lane=True,
    )
    assert claimed.wait == 0.0


# --- ORCH_HOOKS ---------------------------------------------------------------------


def test_load_a_class_instantiates_it() -> None:
    loaded = load_hooks("tests.unit.hookdefs:Recorder")
    assert len(loaded) == 1
    assert type(loaded[0]) is Recorder
    assert load_hooks("tests.unit.hookdefs:Recorder")[0] is not loaded[0], "a fresh instance"


def test_load_an_instance_uses_it_as_is() -> None:
    assert load_hooks("tests.unit.hookdefs:INSTANCE") == [hookdefs.INSTANCE]
    assert load_hooks("tests.unit.hookdefs:INSTANCE")[0] is hookdefs.INSTANCE
    assert load_hooks("tests.unit.hookdefs:NOT_A_HOOK") == [42]


def test_load_two_entries_in_order_with_spaces_and_a_trailing_comma() -> None:
    loaded = load_hooks(" tests.unit.hookdefs:DuckFinished , tests.unit.hookdefs:INSTANCE,")
    assert [type(h) for h in loaded] == [DuckFinished, Recorder]
    assert loaded[1] is hookdefs.INSTANCE


def test_load_a_dotted_attribute() -> None:
    (loaded,) = load_hooks("tests.unit.hookdefs:Namespace.Inner")
    assert type(loaded) is hookdefs.Namespace.Inner


@pytest.mark.parametrize("spec", ["", " ", ",", " , "])
def test_nothing_to_load(spec: str) -> None:
    assert load_hooks(spec) == []


def test_loaded_hooks_are_called() -> None:
    chain = HookChain(load_hooks("tests.unit.hookdefs:Recorder,tests.unit.hookdefs:Boom"))
    event = sample_event(RunFinished)
    chain.emit(event)
    assert isinstance(chain.hooks[0], Recorder)
    assert chain.hooks[0].seen == [event]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x", "ORCH_HOOKS entry 'x': expected module:attr"),
        (":Recorder", "ORCH_HOOKS entry ':Recorder': expected module:attr"),
        ("tests.unit.hookdefs:", "ORCH_HOOKS entry 'tests.unit.hookdefs:': expected module:attr"),
        ("x:y", "ORCH_HOOKS entry 'x:y': cannot import module 'x'"),
        (
            "tests.unit.nosuch:Hook",
            "ORCH_HOOKS entry 'tests.unit.nosuch:Hook': cannot import module 'tests.unit.nosuch'",
        ),
        (
            "tests.unit.hookdefs:Nope",
            "ORCH_HOOKS entry 'tests.unit.hookdefs:Nope': "
            "module 'tests.unit.hookdefs' has no attribute 'Nope'",
        ),
        (
            "tests.unit.hookdefs:Namespace.Nope",
            "ORCH_HOOKS entry 'tests.unit.hookdefs:Namespace.Nope': "
            "module 'tests.unit.hookdefs' has no attribute 'Namespace.Nope'",
        ),
        (
            "tests.unit.hookbroken:BROKEN",
            "ORCH_HOOKS entry 'tests.unit.hookbroken:BROKEN': cannot import module "
            "'tests.unit.hookbroken': ModuleNotFoundError: "
            "No module named 'orch_missing_dependency_for_tests'",
        ),
        (
            "tests.unit.hookdefs:NeedsArgs",
            "ORCH_HOOKS entry 'tests.unit.hookdefs:NeedsArgs': cannot instantiate 'NeedsArgs': "
            "TypeError: NeedsArgs.__init__() missing 1 required positional argument: 'level'",
        ),
    ],
)
def test_load_errors_are_one_line_and_name_the_entry(spec: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_hooks(f"tests.unit.hookdefs:INSTANCE,{spec}")
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.__cause__ is None


def test_the_setting_reads_orch_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCH_HOOKS", raising=False)
    assert Settings().hooks == ""
    monkeypatch.setenv("ORCH_HOOKS", "tests.unit.hookdefs:INSTANCE")
    settings = Settings()
    assert settings.hooks == "tests.unit.hookdefs:INSTANCE"
    assert load_hooks(settings.hooks) == [hookdefs.INSTANCE]


def test_propagate_merges_every_hooks_context_and_skips_a_broken_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Trace(Hooks):
        def propagate(self) -> dict[str, str]:
            return {"traceparent": "00-abc-def-01"}

    class Tenant(Hooks):
        def propagate(self) -> dict[str, str]:
            return {"tenant": "acme", "traceparent": "00-later-wins-01"}

    class Broken(Hooks):
        def propagate(self) -> dict[str, str]:
            raise RuntimeError("no context today")

    chain = HookChain([Trace(), Broken(), Tenant()])
    with caplog.at_level(logging.ERROR, logger=HOOKS_LOG):
        assert chain.propagate() == {"traceparent": "00-later-wins-01", "tenant": "acme"}
    assert "raised in propagate" in caplog.text
    assert HookChain([Hooks()]).propagate() == {}
