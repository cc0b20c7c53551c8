"""The effect relay: delivers the outbox's effects to signed webhooks and NATS JetStream.

- :mod:`.config`: relay.yaml, read and checked (:func:`load_config`, :class:`RelayConfig`).
- :mod:`.signing`: the webhook signature (:func:`sign`, :func:`verify_signature`); only the
  standard library, so a receiver verifies without the ``relay`` extra.
- :mod:`.message`: the body and headers of every delivery.
- :mod:`.destinations`: what a destination does (:class:`Outcome`), :mod:`.webhook` and
  :mod:`.jetstream` the two kinds.
- :mod:`.core`: :class:`Relay`, which claims, delivers and settles.

Layer: above the runtime and the stores (it uses a :class:`rulekit.Store`), below the CLI
and the service. docs/effects.md is the guide.
"""

from __future__ import annotations
