"""The foundation every layer shares: source text and places in it (:mod:`.source`),
diagnostics with stable codes (:mod:`.diagnostics`), the error types
(:mod:`.errors`), the canonical JSON form content hashes are taken over
(:mod:`.canonical`) and the files the package carries, the Lark grammars among them
(:mod:`.grammars`).

Layer: the bottom; imports nothing else of rulekit.
"""

from importlib import metadata

#: rulekit's version, read from the installed package's metadata (pyproject.toml's).
__version__ = metadata.version("rulekit")
