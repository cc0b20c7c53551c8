"""The deadline worker: fires what falls due, in a loop, on any store.

``rulekit worker`` runs it as its own process; ``rulekit serve`` runs one in a
thread. It needs the store alone, not the web stack.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rulekit.core.errors import RuleError
from rulekit.runtime.store import Store

log = logging.getLogger("rulekit.worker")


class Worker:
    """Fires due deadlines in a loop until stopped; a stop lets the batch in flight finish."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 1.0,
        batch: int = 100,
        on_fired: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch
        self.on_fired = on_fired
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> tuple[int, int]:
        """Claim one batch of due deadlines: (how many were claimed, how many fired)."""
        claimed = self.store.fire_due(limit=self.batch)
        fired = sum(1 for f in claimed if f.result is not None)
        if fired and self.on_fired is not None:
            self.on_fired(fired)
        return len(claimed), fired

    def run(self) -> None:
        """Until :meth:`stop`: drain what is due, then wait ``interval`` before looking again."""
        while not self.stopping.is_set():
            try:
                while self.run_once()[0] == self.batch and not self.stopping.is_set():
                    pass  # a full batch: more may be due
            except (RuleError, OSError) as e:
                log.error("deadline worker: %s", e)
            except Exception:  # a database outage: log it, keep going
                log.exception("deadline worker: firing deadlines failed; retrying")
            self.stopping.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="rulekit-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
