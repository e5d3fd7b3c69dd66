"""Resource limits: defaults, server-side maxima and per-challenge overrides."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from ..errors import LimitsError
from .observation import Limits


def resolve_limits(defaults: Limits, maxima: Limits, overrides: Mapping[str, object]) -> Limits:
    """Apply ``overrides`` to ``defaults``; refuse unknown names and values above ``maxima``."""
    unknown = sorted(set(overrides) - set(Limits.model_fields))
    if unknown:
        known = ", ".join(Limits.model_fields)
        raise LimitsError(f"unknown limit(s) {', '.join(unknown)}; known: {known}")
    try:
        merged = Limits.model_validate({**defaults.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LimitsError(f"limit {first['loc'][0]}: {first['msg']}") from None
    for name in Limits.model_fields:
        value, ceiling = getattr(merged, name), getattr(maxima, name)
        if value > ceiling:
            raise LimitsError(f"limit {name}={value} exceeds the server maximum {ceiling}")
    return merged
