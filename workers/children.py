"""Child workflow steps on a worker: start the child, later record what it gave.

A `workflow: NAME[:VERSION]` step is claimed like a task. Its first claim
starts the child run (spawn.lua) with the input bound as a step's parameters
are, and the worker is free at once: the step waits, holding no worker. When
the child ends, its run queues the step's message again; that claim comes
back in mode CHILD and the worker records the child's result as the step's
output, or its failure through the step's retry policy (a retry starts a new
child). Compensating the step undoes its child runs as a whole (undo_child.lua).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from orchestrator.children import child_run_id
from orchestrator.errors import ChildRunFailed, NonRetryableError, OrchestratorError
from orchestrator.runs import TERMINAL
from orchestrator.states import RunState
from orchestrator.store import outcomes as o
from workers.attempts import Call

if TYPE_CHECKING:
    from orchestrator.store import Attempt
    from workers.loaded import LoadedWorkflow
    from workers.runtime import StepRuntime

log = logging.getLogger("orchestrator.children")


def child_input(call: Call, declared: dict[str, str] | None) -> str:
    """The child's input, bound as a step's parameters are.

    Run-input fields and upstream outputs by name (an upstream wins over an
    input field of the same name); under ``map:`` the element arrives under
    the map source's name. A child that declares ``input:`` gets only the
    fields it declares.
    """
    run_input = json.loads(call.inputs.input_json)
    value: dict[str, Any] = dict(run_input) if isinstance(run_input, dict) else {}
    for name, raw in call.inputs.upstream_json.items():
        value[name] = json.loads(raw) if raw is not None else None
    if declared is not None:
        value = {k: v for k, v in value.items() if k in declared}
    return json.dumps(value, separators=(",", ":"))


class ChildSteps:
    """What a worker does for a child workflow step's attempt and compensation."""

    def __init__(self, runtime: StepRuntime) -> None:
        self.runtime = runtime
        self._declared: dict[str, dict[str, str] | None] = {}

    def _child_ref(self, call: Call) -> str:
        record = json.loads(self.runtime.engine.records(call.attempt.ref)[call.attempt.step])
        return str(record["child"])

    def _declared_input(self, ref: str) -> dict[str, str] | None:
        if ref not in self._declared:
            name, _, version = ref.rpartition(":")
            try:
                wf = self.runtime.store.reads.workflow(name, int(version))
            except (ValueError, OrchestratorError):  # not registered: spawn refuses it
                return None
            self._declared[ref] = dict(wf.input) if wf.input is not None else None
        return self._declared[ref]

    def run(self, loaded: LoadedWorkflow, call: Call) -> o.Claim | o.Recording:
        """Start the child (first claim), or record the ended child's outcome (mode CHILD)."""
        if call.inputs.mode is o.Mode.CHILD:
            return self._collect(loaded, call)
        ref = self._child_ref(call)
        payload = child_input(call, self._declared_input(ref))
        carried = self.runtime.report.chain.propagate() if self.runtime.report.chain else {}
        context = json.dumps(carried, separators=(",", ":")) if carried else ""
        engine = self.runtime.engine
        outcome = self.runtime._patiently(
            lambda: engine.spawn(call.attempt, payload, context=context)
        )
        waits = loaded.waits()
        if isinstance(outcome, o.Spawned):
            log.info("run %s step %s started child run %s (%s)", call.attempt.run_id,
                     call.attempt.step, outcome.child, ref)  # fmt: skip
            self.runtime.report.finished(call, o.Recorded(decisions=outcome.decisions), waits)
            return o.Recorded()
        self.runtime.report.finished(call, outcome, waits)
        return outcome

    def recollect(self, loaded: LoadedWorkflow, attempt: Attempt, count: int) -> bool:
        """Record the end of a child whose collecting attempt was lost (its lease ran out).

        Only a collecting attempt holds a lease while its child exists (starting the
        child drops the lease), so a lost attempt whose child has ended was recording
        that end: the sweeper records it, rather than retrying the step and starting
        a second child while the first one's effects stand. False: not such an attempt.
        """
        child = child_run_id(attempt.run_id, attempt.step, attempt.index, count)
        state = self.runtime.store.reads.child_outcome(child)["state"]
        if state is None or state not in TERMINAL:
            return False
        inputs = o.Inputs(count, "{}", o.Mode.CHILD, {})
        ctx = self.runtime._context(loaded, attempt, inputs, "sweeper")
        self._collect(loaded, Call(loaded.workflow, loaded.plan, ctx, attempt, inputs))
        return True

    def _collect(self, loaded: LoadedWorkflow, call: Call) -> o.Recording:
        attempt = call.attempt
        child = child_run_id(attempt.run_id, attempt.step, attempt.index, call.inputs.attempt)
        reads = self.runtime.store.reads
        fields = reads.child_outcome(child)
        state, result, error = fields["state"], fields["result"], fields["error"]
        if state == RunState.SUCCEEDED:
            output = result or "null"
            try:
                items = self._items(loaded, attempt.step, output)
            except NonRetryableError as bad:
                return self.runtime._record_failure(loaded, call, bad, called=False)
            engine = self.runtime.engine
            outcome = self.runtime._patiently(
                lambda: engine.complete(attempt, output, items, lane=call.lane)
            )
            self.runtime.report.finished(call, outcome, loaded.waits())
            return outcome
        why = f"ended {state}: {error}" if state else "expired before its outcome was recorded"
        failed = ChildRunFailed(f"child run {child} {why}")
        return self.runtime._record_failure(loaded, call, failed, called=False)

    @staticmethod
    def _items(loaded: LoadedWorkflow, step: str, output: str) -> list[str]:
        if not loaded.plan.steps[step].mapped_over:
            return []
        decoded = json.loads(output)
        if not isinstance(decoded, list):
            raise NonRetryableError(
                f"step {step!r}: its child's result must be a list because a step maps over "
                f"it, got {type(decoded).__name__}"
            )
        return [json.dumps(e, separators=(",", ":")) for e in decoded]

    def compensate(self, attempt: Attempt) -> tuple[str, dict[str, Any] | None]:
        """Undo the step's children as a whole.

        Answers 'done' (record the compensation), 'failed' with the error to
        record (a child's compensation failed for good), or 'pending' / 'stale'
        (nothing to record now: a child's end queues the compensation again).
        """
        engine = self.runtime.engine
        undone = self.runtime._patiently(lambda: engine.undo_child(attempt))
        if not isinstance(undone, o.ChildrenUndone):
            return "stale", None
        if undone.outcome is o.ChildUndo.FAILED:
            message = f"child run {undone.child}: {undone.error}"
            return "failed", {"type": "ChildCompensationFailed", "message": message, "attempt": 1}
        return undone.outcome.value, None
