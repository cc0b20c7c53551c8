"""The routes, one router per resource: :mod:`.operations` (health, metrics),
:mod:`.policies`, :mod:`.cases` and :mod:`.effects` (the outbox).

Each route is a plain function of its request and of what its dependencies
give it (:mod:`rulekit.service.dependencies`: the service, the caller); the
OpenAPI document (``/openapi.json``, ``/docs``) is FastAPI's own.
"""
