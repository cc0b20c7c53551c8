"""Shared test helpers: strict value comparison and paths to the data folders."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def same_value(a: Any, b: Any) -> bool:
    """Equal values of the same Python type (NaN equals NaN; containers compared strictly)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(
            type(k) is type(next(k2 for k2 in b if k2 == k)) and same_value(a[k], b[k]) for k in a
        )
    if isinstance(a, datetime):
        return a == b
    return bool(a == b)


# Broken inputs for the golden tests (some are scenario files the rulekit
# plugin would otherwise collect); test_golden_diagnostics.py reads them.
collect_ignore = ["golden"]
