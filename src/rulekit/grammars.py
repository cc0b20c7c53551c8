"""Finding the Lark grammars, in a checkout or in an installed wheel.

The grammars live in ``grammar/`` at the top of the repository; the wheel
carries them as ``rulekit/grammar/`` (see pyproject.toml). An installed copy
must never need a checkout, so the package location is tried first.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def grammar_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "grammar", _PACKAGE_DIR.parent.parent / "grammar"):
        if (candidate / "cel.lark").is_file():
            return candidate
    raise RuntimeError(
        "rulekit's grammar files are missing: reinstall the package "
        f"(looked in {_PACKAGE_DIR / 'grammar'} and the repository's grammar/)"
    )


def grammar_text(name: str) -> str:
    """The text of ``grammar/<name>``."""
    return (grammar_dir() / name).read_text(encoding="utf-8")
