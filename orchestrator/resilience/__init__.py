"""Resilience plug-ins: backoff, error classification (budgets and breakers build on these)."""

from orchestrator.resilience.backoff import backoff_delay
from orchestrator.resilience.classify import is_retryable

__all__ = ["backoff_delay", "is_retryable"]
