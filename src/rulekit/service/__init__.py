"""The service: cases run over HTTP for other services.

:mod:`.app` assembles the ASGI application from its parts: :mod:`.routes` (one
router per resource: cases, effects, policies, and operations such as health
and metrics), :mod:`.models` (the request and response bodies, one model per
shape), :mod:`.problems` (every error an RFC 9457 problem document),
:mod:`.gate` (the plain ASGI gate every request passes first: authentication,
the body limit, the metrics), :mod:`.dependencies` (what routes are given: the
:class:`.state.Service` and the caller) and :mod:`.state` (the service: store,
tokens, metrics, worker). :mod:`.auth` says who is calling and what they may
see and do; :mod:`.serving` runs it under uvicorn. Needs the ``server`` extra;
nothing below this layer imports it, so a core install never loads the web
stack.

Layer: imports :mod:`rulekit.core`, :mod:`rulekit.expr`, :mod:`rulekit.policy`,
:mod:`rulekit.runtime` and :mod:`rulekit.stores`.
"""
