"""A hooks module that cannot be imported: it needs a package that is not installed."""

from orch_missing_dependency_for_tests import Hooks  # type: ignore[import-not-found]

BROKEN = Hooks
