"""The engine's semantics, as ../shared/contracts/scenarios.md (time rules, refusals)
and ../shared/contracts/api.md state them.

Each file runs small inline policies (``rulekit.loads``) through
``rulekit.runtime.Engine`` and checks one rule of the contract, mostly as tables: deadlines,
automatic transitions, refusals, facts on open and money, idempotency keys, ``allowed``,
history records, replay and time. The bugs these tests found are kept as regression tests
in test_regressions.py.
"""
