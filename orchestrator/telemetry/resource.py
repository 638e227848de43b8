"""Our tracer's resource, with its hash worked out once instead of at every span export.

The OTLP encoder groups each batch of spans by resource, so it hashes every
span's resource, and the SDK's ``Resource`` hashes by dumping its attributes
to sorted JSON each time: on the 10-step chains of ``make bench`` that was a
tenth of what exporting a span cost. A resource's attributes never change, so
:func:`pin_resource` gives our tracer an equal resource (same attributes,
same schema URL, same hash) that keeps its hash. Spans of other tracers keep
the SDK's resource; being equal and hashing alike, both land in the same
``ResourceSpans`` of an export. A tracer without a ``resource`` (not the
SDK's) is left as it is.
"""

from __future__ import annotations

from functools import cache
from typing import Any


def pin_resource(tracer: object) -> None:
    """Give ``tracer`` (the SDK's) an equal resource whose hash is computed once."""
    resource = getattr(tracer, "resource", None)
    if resource is None or getattr(resource, "pinned", False):
        return
    pinned = _pinned_class()
    if isinstance(resource, pinned.__mro__[1]):
        tracer.resource = pinned(resource)  # type: ignore[attr-defined]


@cache
def _pinned_class() -> type:
    """The SDK's ``Resource`` with a remembered hash (built at first use: the SDK is lazy)."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - the SDK made the tracer

    class Pinned(Resource):
        pinned = True

        def __init__(self, of: Any) -> None:
            super().__init__(of.attributes, of.schema_url)
            self._hash = Resource.__hash__(self)

        def __hash__(self) -> int:
            return self._hash

    return Pinned
