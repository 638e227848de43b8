"""Turning telemetry on and off: what is imported, when the SDK is set up, and what it costs off.

The set-up tests run in a fresh interpreter each: the SDK's providers are
process-wide and can be set only once, so no test may leave them behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import metrics, trace

from orchestrator.hooks import HookChain
from orchestrator.telemetry import Metrics, OpenTelemetry, Traces
from orchestrator.telemetry import names as n
from tests.unit.telemetry_events import World, run_finished

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ORCH_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        timeout=60,
        check=False,
    )


def test_importing_the_orchestrator_leaves_telemetry_out_and_telemetry_the_sdk() -> None:
    done = python(
        """
        import sys
        import orchestrator, workers.app
        assert "orchestrator.telemetry" not in sys.modules
        # redis-py imports parts of the SDK itself when it is installed; we add none.
        before = {m for m in sys.modules if m.startswith("opentelemetry.sdk")}
        import orchestrator.telemetry
        added = {m for m in sys.modules if m.startswith("opentelemetry.sdk")} - before
        assert added == set(), sorted(added)
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_without_real_providers_the_hook_is_disabled_and_left_out_of_the_chain() -> None:
    hook = OpenTelemetry(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    assert hook.enabled is False
    assert hook.propagate() == {}
    assert not HookChain([hook])
    assert Traces(trace.NoOpTracerProvider()).enabled is False
    assert Metrics(metrics.NoOpMeterProvider()).enabled is False


def test_with_one_real_provider_the_hook_is_on() -> None:
    world = World()
    hook = OpenTelemetry(tracer_provider=world.tracer_provider)
    assert hook.enabled is True
    assert bool(HookChain([hook]))
    carried = hook.propagate()
    assert "traceparent" in carried
    hook.on_run_finished(run_finished(carried))
    assert [s.name for s in world.spans()] == ["run ingest"]


def test_with_only_the_global_proxies_nothing_is_set_up_in_a_process_without_the_sdk() -> None:
    done = python(
        """
        import sys
        sys.modules["opentelemetry.sdk"] = None  # as if the [otel] extra were not installed
        from orchestrator.hooks import HookChain, load_hooks
        hooks = load_hooks("orchestrator.telemetry:OpenTelemetry")
        assert hooks[0].enabled is False and not HookChain(hooks)
        assert not any(m.startswith("opentelemetry.sdk.") for m in sys.modules)
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_orch_hooks_sets_up_the_sdk_from_otel_variables_once() -> None:
    done = python(
        """
        import json
        from opentelemetry import trace
        from orchestrator.hooks import load_hooks
        from orchestrator.telemetry import sdk
        from tests.unit.telemetry_events import run_finished
        first, second = load_hooks(
            "orchestrator.telemetry:OpenTelemetry,orchestrator.telemetry:OpenTelemetry"
        )
        provider = trace.get_tracer_provider()
        assert type(provider).__module__.startswith("opentelemetry.sdk"), provider
        assert first.enabled and second.enabled
        first.on_run_finished(run_finished(first.propagate()))
        sdk.shutdown()
        """,
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_SERVICE_NAME="orch-test",
    )
    assert done.returncode == 0, done.stderr
    span = json.loads(done.stdout)
    assert span["name"] == "run ingest"
    assert span["resource"]["attributes"]["service.name"] == "orch-test"


def test_an_application_that_set_up_its_own_sdk_keeps_it() -> None:
    done = python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from orchestrator.telemetry import OpenTelemetry, sdk
        mine = TracerProvider()
        trace.set_tracer_provider(mine)
        hook = OpenTelemetry()
        assert trace.get_tracer_provider() is mine
        assert hook.traces.enabled and not hook.metrics.enabled
        assert sdk.configure() is False
        print("ok")
        """,
        OTEL_TRACES_EXPORTER="console",
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_otel_sdk_disabled_turns_the_hook_off() -> None:
    done = python(
        """
        from orchestrator.hooks import HookChain
        from orchestrator.telemetry import OpenTelemetry
        hook = OpenTelemetry()
        assert hook.enabled is False and not HookChain([hook])
        print("ok")
        """,
        OTEL_SDK_DISABLED="true",
        OTEL_TRACES_EXPORTER="console",
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_a_bad_exporter_name_is_a_one_line_error_naming_the_hook() -> None:
    done = python(
        """
        from orchestrator.errors import SpecError
        from orchestrator.hooks import load_hooks
        try:
            load_hooks("orchestrator.telemetry:OpenTelemetry")
        except SpecError as exc:
            print(exc)
        """,
        OTEL_TRACES_EXPORTER="nonesuch",
    )
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith("ORCH_HOOKS entry 'orchestrator.telemetry:OpenTelemetry'"), line
    assert "nonesuch" in line


def test_each_event_goes_only_to_the_parts_that_handle_it() -> None:
    world = World()
    hook = world.hook()
    chain = HookChain([hook])
    assert not chain.wants("on_step_claimed"), "no part handles claims: not even built"
    assert hook.on_attempt_started is not None
    carried = hook.propagate()
    chain.emit(run_finished(carried))
    assert [s.name for s in world.spans()] == ["run ingest"]
    assert [p.value for _, p in world.points(n.RUNS_FINISHED)] == [1]


def test_a_part_that_raises_does_not_keep_the_event_from_the_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    hook = world.hook()

    def broken(event: object) -> None:
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(hook.traces, "on_run_finished", broken)
    hook.on_run_finished(run_finished(hook.propagate()))  # type: ignore[misc]
    assert [p.value for _, p in world.points(n.RUNS_FINISHED)] == [1]


def test_two_metric_hooks_on_one_provider_share_its_instruments() -> None:
    world = World()
    first, second = world.metrics(), world.metrics()
    assert first.i is second.i
    first.on_run_finished(run_finished({}))
    second.on_run_finished(run_finished({}, "FAILED"))
    counts = {a[n.STATE]: p.value for a, p in world.points(n.RUNS_FINISHED)}
    assert counts == {"SUCCEEDED": 1, "FAILED": 1}
