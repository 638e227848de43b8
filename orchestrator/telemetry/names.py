"""The vocabulary telemetry speaks: span names, attribute keys and instrument names.

Kept in one place so that the README, the tests and dashboards can rely on
them, and so a rename is one change. Attribute keys are namespaced under
``orch.``; instrument names follow OpenTelemetry's style (dotted, lower case,
the unit in ``unit`` rather than in the name).
"""

from __future__ import annotations

#: The instrumentation scope of every span and instrument.
SCOPE = "orchestrator"

# -- attribute keys (spans and metrics) ------------------------------------------

RUN_ID = "orch.run_id"
WORKFLOW = "orch.workflow"
VERSION = "orch.version"
STEP = "orch.step"
ATTEMPT = "orch.attempt"
INDEX = "orch.index"
QUEUE = "orch.queue"
WORKER = "orch.worker"
OUTCOME = "orch.outcome"
QUEUE_DELAY = "orch.queue_delay"
RETRY_DELAY = "orch.retry_delay"
DEPENDENCY = "orch.dependency"
BREAKER_STATE = "orch.breaker_state"
STATE = "orch.state"
SIGNAL = "orch.signal"
WAITED = "orch.waited"
EDGE = "orch.edge"
VALID = "orch.valid"
REASON = "orch.reason"

# -- instruments --------------------------------------------------------------------

RUNS_SUBMITTED = "orch.runs.submitted"
RUNS_FINISHED = "orch.runs.finished"
ATTEMPTS = "orch.attempts"
RETRIES = "orch.retries"
QUEUE_DELAY_HISTOGRAM = "orch.queue.delay"
HANDOFFS = "orch.handoffs"
BUDGET_DENIALS = "orch.budget.denials"
BREAKER = "orch.breaker.state"
WAITS = "orch.waits"
COMPENSATIONS = "orch.compensations"

#: ``orch.breaker.state`` as a number: 0 closed, 1 half-open, 2 open.
BREAKER_LEVELS = {"closed": 0, "half_open": 1, "open": 2}

# -- span names -----------------------------------------------------------------------


def run_span(workflow: str) -> str:
    return f"run {workflow}"


def attempt_span(workflow: str, step: str) -> str:
    return f"{workflow}.{step}"


def wait_span(workflow: str, step: str) -> str:
    return f"wait {workflow}.{step}"


def compensation_span(workflow: str, step: str) -> str:
    return f"compensate {workflow}.{step}"
