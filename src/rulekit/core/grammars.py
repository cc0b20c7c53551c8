"""Finding the files the wheel carries, in a checkout or in an installed wheel.

The Lark grammars live in ``grammar/`` at the top of the repository, the example
policy in ``rules/``; the wheel carries them as ``rulekit/grammar/`` and
``rulekit/rules/`` (see pyproject.toml). An installed copy must never need a
checkout, so the package location is tried first.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

import lark

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the rulekit package


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


def cache_dir() -> Path | None:
    """Where built parsers are kept: ``$XDG_CACHE_HOME/rulekit`` (else ``~/.cache/rulekit``).

    None when there is no such place (no home directory): parsers are then built each time.
    """
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:
        return None
    return root / "rulekit"


def lalr_parser(name: str, grammar: str, **options: Any) -> lark.Lark:
    """A Lark LALR parser for ``grammar``, built once per install and then loaded from disk.

    Building the tables takes 60-150 ms per grammar, on every start of the CLI;
    loading them from Lark's cache takes a tenth of that. The file is named by the
    grammar's digest and the Lark and Python versions, so installs that share a home
    directory keep their own; Lark checks a digest of the grammar and options inside it,
    and rebuilds (silently) when the file is missing, stale, damaged or unwritable.
    """
    folder = cache_dir()
    if folder is None:
        return lark.Lark(grammar, parser="lalr", **options)
    key = hashlib.sha256(
        f"{grammar}\0{lark.__version__}\0{sys.version_info[:2]}".encode()
    ).hexdigest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return lark.Lark(grammar, parser="lalr", **options)
    return lark.Lark(
        grammar, parser="lalr", cache=str(folder / f"{name}-{key[:16]}.lark"), **options
    )
