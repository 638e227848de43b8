"""Resilience plug-ins: backoff, error classification and the retry decision.

Budgets and breakers build on these.
"""

from orchestrator.resilience.backoff import backoff_delay
from orchestrator.resilience.classify import is_retryable
from orchestrator.resilience.decision import (
    Failure,
    FailureKind,
    GiveUp,
    GiveUpReason,
    Retry,
    Veto,
    apply_veto,
    decide_retry,
    describe_failure,
    may_fall_back,
)

__all__ = [
    "Failure",
    "FailureKind",
    "GiveUp",
    "GiveUpReason",
    "Retry",
    "Veto",
    "apply_veto",
    "backoff_delay",
    "decide_retry",
    "describe_failure",
    "is_retryable",
    "may_fall_back",
]
