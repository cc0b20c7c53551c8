"""A webhook receiver for ``rulekit relay``: verifies each delivery's signature, then
takes the effect once (standard library and rulekit only; docs/effects.md).

    export PAYMENTS_WEBHOOK_SECRET=...          # the same value as the relay's
    python examples/relay/receiver.py [PORT]    # default 8090; 0: any free port

Answers 200 for an effect taken (or already taken: a repeat is a success), 400 for a
delivery whose signature does not verify. A real receiver records the key in its own
database, in the transaction that carries the effect out (docs/effects.md,
"Deduplicating in the consumer"); here, a set in memory stands for that table.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import rulekit

#: Bodies larger than this are refused unread (an effect is a few hundred bytes).
MAX_BODY = 1 << 20


class Receiver(BaseHTTPRequestHandler):
    """POST /hooks/rulekit: one effect per request."""

    #: the secrets a signature may match (set by main)
    secrets: ClassVar[list[str]] = []
    #: the keys of the effects taken (a real receiver: a table, written with the effect)
    seen: ClassVar[set[str]] = set()

    def do_POST(self) -> None:
        if self.path != "/hooks/rulekit":
            self.answer(404, "not here")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.answer(413, "too large")
            return
        raw = self.rfile.read(length)  # the raw bytes: the signature covers exactly these
        try:
            rulekit.verify_signature(raw, self.headers.get("Rulekit-Signature"), self.secrets)
        except rulekit.SignatureError as e:
            self.answer(400, f"refused: {e}")
            return
        effect = json.loads(raw)
        if effect["key"] in self.seen:
            self.answer(200, f"{effect['key']} already taken")
            return
        self.seen.add(effect["key"])
        print(f"effect {effect['key']}: {effect['name']}({effect['args']})", flush=True)
        self.answer(200, f"{effect['key']} taken")

    def answer(self, status: int, text: str) -> None:
        data = text.encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    # the secret, and while rotating the previous one too: both are accepted
    names = ("PAYMENTS_WEBHOOK_SECRET_NEW", "PAYMENTS_WEBHOOK_SECRET")
    Receiver.secrets = [os.environ[n] for n in names if os.environ.get(n)]
    if not Receiver.secrets:
        sys.exit("receiver: export PAYMENTS_WEBHOOK_SECRET (the relay's secret) first")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8090
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    print(f"listening on http://127.0.0.1:{server.server_port}/hooks/rulekit", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
