"""The service: cases run over HTTP for other services.

:mod:`.app` (the ASGI application: routes, models, errors, metrics),
:mod:`.auth` (who is calling, what they may see and do) and :mod:`.serving`
(running it under uvicorn). Needs the ``server`` extra; nothing below this layer
imports it, so a core install never loads the web stack.

Layer: imports :mod:`rulekit.core`, :mod:`rulekit.expr`, :mod:`rulekit.policy`,
:mod:`rulekit.runtime` and :mod:`rulekit.stores`.
"""
