"""schemathesis against /openapi.json on the live server: no 5xx, and every response
(status, content type, body) matches what the document says."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.api.serve import ServerThread

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def test_every_response_matches_the_document(api_server: ServerThread) -> None:
    """Each operation gets generated requests, valid and not; every answer is checked.

    (Driven by hand rather than by schemathesis's pytest plugin, which does not load
    under this pytest; the checks are the same.)
    """
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    negative = 0
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in ((op, mode) for op in operations for mode in modes):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # nothing about it can be made invalid (no parameter, or only free strings)
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            continue
        negative += mode is schemathesis.GenerationMode.NEGATIVE
    assert negative >= 8, "invalid requests were generated for the constrained operations"
