"""Which failures are worth retrying.

Types are matched by name along the exception's MRO, both bare
(``TimeoutError``) and qualified (``httpx.ReadTimeout``), so a spec can name
exception types without the spec loader importing the libraries they live in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import NonRetryableError

if TYPE_CHECKING:
    from orchestrator.spec import RetryPolicy


def _names(exc: BaseException) -> set[str]:
    names: set[str] = set()
    for cls in type(exc).__mro__:
        names.add(cls.__name__)
        names.add(f"{cls.__module__}.{cls.__qualname__}")
    return names


def is_retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    if isinstance(exc, NonRetryableError):
        return False
    names = _names(exc)
    if names.intersection(policy.non_retryable):
        return False
    return not policy.retry_on or bool(names.intersection(policy.retry_on))
