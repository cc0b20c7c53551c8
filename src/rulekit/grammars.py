"""Finding the files the wheel carries, in a checkout or in an installed wheel.

The Lark grammars live in ``grammar/`` at the top of the repository, the example
policy in ``rules/``; the wheel carries them as ``rulekit/grammar/`` and
``rulekit/rules/`` (see pyproject.toml). An installed copy must never need a
checkout, so the package location is tried first.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: str, marker: str) -> Path:
    """The folder ``name`` (holding the file ``marker``), inside the package or the checkout."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent.parent / name):
        if (candidate / marker).is_file():
            return candidate
    raise RuntimeError(
        f"rulekit's {name} files are missing: reinstall the package "
        f"(looked in {_PACKAGE_DIR / name} and the repository's {name}/)"
    )


@cache
def grammar_dir() -> Path:
    return shipped_dir("grammar", "cel.lark")


def grammar_text(name: str) -> str:
    """The text of ``grammar/<name>``."""
    return (grammar_dir() / name).read_text(encoding="utf-8")
