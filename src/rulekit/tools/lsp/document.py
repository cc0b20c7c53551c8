"""One open document: what kind of file it is, what checking it found, and its index.

The diagnostics are exactly ``rulekit check``'s (:func:`rulekit.analysis.check_source`,
warnings included) for policies, and the scenario loader's (``rulekit test``'s) for
scenario files. Editors send broken text most of the time, so an analysis whose
text does not parse keeps the index of the last text that did (``fresh`` False).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rulekit.analysis import check_source
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import CompileError
from rulekit.core.source import Source
from rulekit.policy import load
from rulekit.tools import scenarios
from rulekit.tools.lsp.index import Index, build

_POLICY_LINE = re.compile(r"""^(?:policy|'policy'|"policy")[ \t]*:""", re.M)


def kind_of(path: str, text: str) -> str | None:
    """``rk``, ``yaml`` (a YAML policy), ``scenarios`` (a scenario file), or None (not a
    rulekit file: an editor may send every YAML file of the project).

    A YAML file is told by its top-level keys, searched for as lines (the text may not
    parse while it is typed): ``scenarios`` makes a scenario file, else ``policy`` a policy.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".rk":
        return "rk"
    if suffix not in (".yaml", ".yml"):
        return None
    if scenarios.SCENARIOS_LINE.search(text):
        return "scenarios"
    if _POLICY_LINE.search(text):
        return "yaml"
    return None


@dataclass(frozen=True)
class Analysis:
    """What is known about one version of a document."""

    path: str
    kind: str | None
    source: Source
    diagnostics: list[Diagnostic]
    #: the names of this text, or of the last text of the document that parsed
    index: Index | None
    #: whether ``index`` is of this very text
    fresh: bool
    #: the index of the last version whose policy checked (the types of its expressions)
    typed: Index | None = None

    @property
    def text(self) -> str:
        return self.source.text


def analyze(path: str, text: str, previous: Analysis | None = None) -> Analysis:
    """Check ``text`` (the document at ``path``); ``previous`` lends its index when the
    text does not parse."""
    kind = kind_of(path, text)
    source = Source(text, path)
    same = previous is not None and previous.kind == kind
    fallback = previous.index if previous is not None and same else None
    typed = previous.typed if previous is not None and same else None
    if kind == "scenarios":
        return Analysis(path, kind, source, _scenario_problems(path, text), None, False)
    if kind is None:
        return Analysis(path, kind, source, [], None, False)
    result = check_source(text, kind, path)
    if result.tree is None:
        return Analysis(path, kind, source, result.diagnostics, fallback, False, typed)
    index = build(result.tree, result.policy)
    typed = index if result.policy is not None else typed
    return Analysis(path, kind, source, result.diagnostics, index, True, typed)


def _scenario_problems(path: str, text: str) -> list[Diagnostic]:
    """The scenario loader's error, as ``rulekit test`` reports it (it stops at the first)."""
    try:
        sf = scenarios.read(Path(path), text)
        try:
            policy = load(sf.policy_path)
        except CompileError as e:
            raise scenarios.load_error(sf, e) from None
        scenarios.check_names(sf, policy)
    except scenarios.ScenarioFileError as e:
        return [e.diagnostic]
    return []
