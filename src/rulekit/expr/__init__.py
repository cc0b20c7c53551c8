"""The condition language: CEL expressions, from text to a checked, compiled function.

:mod:`.parser` (text to :mod:`.ast`), :mod:`.checker` (types, :mod:`.types`),
:mod:`.cost` (the static cost bound), :mod:`.codegen` and :mod:`.interpreter`
(running them, with :mod:`.stdlib`'s functions), :mod:`.convert` (values in and
out), :mod:`.printer`; :mod:`.expression` is the public face
(:class:`~rulekit.expr.expression.Expression`, ``compile_expression``).

Layer: imports :mod:`rulekit.core` only.
"""
