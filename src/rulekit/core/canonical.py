"""The one canonical JSON form rulekit hashes content in.

Keys sorted, no spaces (``","`` and ``":"``), text as UTF-8 rather than ``\\u`` escapes.
A policy artifact's hash (:func:`rulekit.policy.artifact.content_hash`, the key stores
file policy versions under) and a serialized expression's hash
(:meth:`rulekit.Expression.to_dict`) are both this form's sha256.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(data: Any) -> str:
    """``sha256:`` and the hex sha256 of ``data``'s canonical JSON (plain JSON data)."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
