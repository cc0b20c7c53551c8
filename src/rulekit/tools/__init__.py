"""Authoring and testing tools: what policy authors and CI run around a policy.

:mod:`.scenarios` (scenario files: given, when, expect), :mod:`.pytest_plugin`
(scenario files as pytest items), :mod:`.simulate` (a case run by hand on a
simulated clock), :mod:`.reports` (JUnit and SARIF for CI), :mod:`.formatter` (``rulekit fmt``: the
canonical layout of .rk files), :mod:`.convert` (``rulekit convert`` and the canonical YAML
form), :mod:`.lsp` (``rulekit lsp``: the language server) and :mod:`.demo` (rulekit's main
job, start to finish).

Layer: imports :mod:`rulekit.core`, :mod:`rulekit.expr`, :mod:`rulekit.policy`,
:mod:`rulekit.analysis`, :mod:`rulekit.runtime` and :mod:`rulekit.stores`.
"""
