"""Values as the in-memory backend keeps them: what the SQL backends do to a moment on the way
in and out (aware UTC; a naive one refused)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

_T = TypeVar("_T")


def utc_fields(value: _T) -> _T:
    """What the SQL backends do on the way in and out: aware UTC, naive refused."""
    changes: dict[str, Any] = {}
    for f in fields(value):  # type: ignore[arg-type]
        at = getattr(value, f.name)
        if isinstance(at, datetime):
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError("naive datetime refused: store timezone-aware UTC")
            changes[f.name] = at.astimezone(UTC)
    return replace(value, **changes) if changes else value  # type: ignore[type-var]
