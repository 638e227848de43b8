"""One exception root, so callers can catch everything the orchestrator raises.

Each error carries the process exit code the CLI maps it to, so the mapping
from failure kind to exit status is decided where the failure is defined, not
scattered through command handlers.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4


class OrchestratorError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = EXIT_USAGE


class SpecError(OrchestratorError):
    """A workflow spec is invalid; the message names the step and field."""

    def __init__(self, message: str, *, where: str = "") -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class WorkflowConflictError(SpecError):
    """The same name and version were registered with different content."""


class NotFoundError(OrchestratorError):
    """A run, workflow or step that the caller named does not exist."""


class RunLostError(NotFoundError):
    """The run existed, but Redis lost its data since (a restart without persistence)."""


class RedisUnavailableError(OrchestratorError):
    """Redis (the broker and the state store) cannot be reached."""

    exit_code = EXIT_UNREACHABLE


class RedisOutOfMemoryError(RedisUnavailableError):
    """Redis refused a write: it reached ``maxmemory`` (with ``noeviction``, as required).

    Nothing was written, so the call can be made again once memory frees; runs
    already accepted wait and go on then. Exit 3, like an unreachable Redis.
    """


class AdmissionRefusedError(OrchestratorError):
    """Admission control refused a submit: the backlog is at a declared ``max_queued``.

    The producer's signal to slow down instead of an unbounded queue; nothing was
    stored. ``scope`` is 'workflow' or 'key' (the fairness key's own limit).
    """

    exit_code = EXIT_REFUSED

    def __init__(self, workflow: str, scope: str, limit: int, queued: int, key: str = "") -> None:
        self.workflow, self.scope, self.limit, self.queued, self.key = (
            workflow, scope, limit, queued, key
        )  # fmt: skip
        what = f"fairness key {key!r} of workflow {workflow!r}" if scope == "key" else (
            f"workflow {workflow!r}"
        )  # fmt: skip
        field = "fairness.max_queued" if scope == "key" else "max_queued"
        super().__init__(
            f"submit refused: {what} has {queued} runs waiting to start, "
            f"at its limit {field}={limit}"
        )


class RedisPolicyError(OrchestratorError):
    """Redis may evict keys (``maxmemory-policy`` is not ``noeviction``): refused at start.

    An evicting Redis drops accepted runs, their workflow and plan without a
    word, so it is a configuration error (exit 2), not an outage (exit 3).
    ``ORCH_ALLOW_EVICTION=1`` accepts the risk.
    """

    exit_code = EXIT_USAGE


class ReadOnlyClientError(OrchestratorError):
    """A write through a ``Client(read_only=True)``, which connects for reading only."""


class RunTimeoutError(OrchestratorError):
    """`Run.wait` gave up before the run reached a terminal state."""

    exit_code = EXIT_RUN_FAILED


class RunFailedError(OrchestratorError):
    """`Run.result` was asked for the result of a run that did not succeed."""

    exit_code = EXIT_RUN_FAILED


class ChildRunFailed(OrchestratorError):
    """A child workflow step's child run did not succeed: the step's retry policy decides."""


class NonRetryableError(OrchestratorError):
    """Raised by step code to fail the step at once, without retries."""


class StepCancelled(NonRetryableError):
    """Raised inside a step body when its run was cancelled and its ``cancel_grace`` ran out.

    Catch it (or use ``finally``) to clean up; the step is recorded FAILED and
    the run's saga goes on. A body that swallows it is terminated later.
    """


class TaskRefusedError(SpecError, NonRetryableError):
    """A spec names code that may not run as a step: not marked ``@step``, or in a
    module outside ``ORCH_TASK_MODULES``. Refused before it runs; never retried."""


class PayloadTooLargeError(NonRetryableError):
    """A step output or run input exceeds ORCH_MAX_PAYLOAD_BYTES; retrying cannot shrink it."""


class CircuitOpenError(NonRetryableError):
    """The step's dependency has an open circuit breaker and the step has no fallback."""


class HandoffError(NonRetryableError):
    """An upstream output does not fit the parameter annotation it feeds."""

    def __init__(self, message: str, *, edge: str) -> None:
        self.edge = edge
        super().__init__(message)
