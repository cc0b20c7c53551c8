"""Collection settings for the whole suite (fixtures and hooks only: the shared helpers
are in tests/support.py)."""

from __future__ import annotations

# Broken inputs for the golden tests (some are scenario files the rulekit
# plugin would otherwise collect); test_golden_diagnostics.py reads them.
collect_ignore = ["golden"]
