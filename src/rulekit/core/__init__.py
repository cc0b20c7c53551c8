"""The foundation every layer shares: source text and places in it (:mod:`.source`),
diagnostics with stable codes (:mod:`.diagnostics`), the error types
(:mod:`.errors`), the canonical JSON form content hashes are taken over
(:mod:`.canonical`) and the files the package carries, the Lark grammars among them
(:mod:`.grammars`).

Layer: the bottom; imports nothing else of rulekit.
"""

from typing import Any

#: rulekit's version, read from the installed package's metadata (pyproject.toml's) when
#: first asked for: reading metadata costs every command's start some 30 ms.
__version__: str


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        globals()["__version__"] = version = metadata.version("rulekit")
        return version
    raise AttributeError(f"module 'rulekit.core' has no attribute {name!r}")
