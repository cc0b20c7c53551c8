"""Who is calling the service, and what they may see and do.

Callers present bearer tokens. A tokens file (YAML) maps each token to a
caller::

    tokens:
      - token: "m-shop-1-secret"          # or sha256: <hex digest of the token>
        actor: merchant                   # the actor its events are sent as
        principal: shop-1                 # the party it is: cases of shop-1 only
      - sha256: "9f86d081884c7d65..."
        actor: consumer
        principal: user-7
      - token: "platform-secret"
        actor: platform                   # no principal: every case
      - token: "order-system-secret"
        admin: true                       # opens cases, updates facts, drains the outbox

The rules (enforced by the service, never by the client):

- a caller sees a case when it is an admin, or when it has an actor and either
  no principal or the case's party for that actor is its principal; any other
  case does not exist for it (404, not 403);
- events are sent as the caller's actor: the policy then says whether that
  actor may send them (``actor_not_allowed``);
- opening a case needs an admin, or a caller with a principal that names
  itself as the case's only party (a consumer opens its own requests; the
  case's other parties come from the integration, an admin); only an admin
  chooses a case's id or a policy version that is not current;
- idempotency keys are each caller's own (:attr:`Caller.identity`);
- updating facts from outside and the outbox (claim, ack, fail, dead letters)
  need an admin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class TokensError(ValueError):
    """A tokens file that cannot be used: the message names the entry and the problem."""


@dataclass(frozen=True)
class Caller:
    name: str
    actor: str | None = None
    principal: str | None = None
    admin: bool = False

    def sees(self, parties: Mapping[str, str]) -> bool:
        """Whether it sees (reads, and acts on) a case of these parties: an admin any; a
        caller with an actor, a case whose party for that actor is its principal (every
        case, without a principal). Reading and acting are one rule: a case it may not
        see does not exist for it."""
        if self.admin:
            return True
        return self.actor is not None and (
            self.principal is None or parties.get(self.actor) == self.principal
        )

    def may_open(self, parties: Mapping[str, str]) -> bool:
        """Whether it may open a case of these parties: an admin any; another caller only
        one whose only party is itself. Not :meth:`sees`: opening names every party of a
        case, and the other parties are the integration's to name (a merchant may not
        open a case against a consumer it chooses), so a caller that would see the case
        may still not open it, and a caller without a principal opens none."""
        if self.admin:
            return True
        return self.party is not None and dict(parties) == dict([self.party])

    @property
    def may_not_open(self) -> str:
        """Why :meth:`may_open` said no."""
        if self.actor is None or self.principal is None:
            return f"a {self.actor or 'caller'} without a principal cannot open cases: an admin opens them"
        return (
            f"a {self.actor} may only open cases whose only party is itself: "
            f'"parties": {{"{self.actor}": "{self.principal}"}}'
        )

    @property
    def identity(self) -> str:
        """Whose idempotency keys these are: ``admin`` (every admin token: the integration),
        or the actor and principal. Two tokens of one identity share their keys; callers
        of different identities never see each other's."""
        if self.admin:
            return "admin"
        return f"{self.actor}:{self.principal}" if self.principal else str(self.actor)

    @property
    def party(self) -> tuple[str, str] | None:
        """The (actor, principal) a case list is narrowed to, or None for every case."""
        if self.admin or self.actor is None or self.principal is None:
            return None
        return (self.actor, self.principal)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Tokens:
    """Bearer tokens -> callers (only their SHA-256 digests are kept)."""

    def __init__(self, callers: Mapping[str, Caller]) -> None:
        self._by_digest = dict(callers)

    def caller(self, token: str) -> Caller | None:
        # Looked up by the token's digest: timing can tell nothing about a token
        # whose digest the caller cannot choose.
        return self._by_digest.get(_digest(token))

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def load(cls, path: str | Path, actors: set[str] | None = None) -> Tokens:
        """Read a tokens file; ``actors``: the actors the served policies declare."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise TokensError(f"{path}: cannot read the tokens file: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise TokensError(f"{path}: not valid YAML: {e}") from None
        return cls.parse(data, str(path), actors)

    @classmethod
    def parse(cls, data: Any, where: str, actors: set[str] | None = None) -> Tokens:
        if not isinstance(data, Mapping) or not isinstance(data.get("tokens"), list):
            raise TokensError(f"{where}: expected a map with a `tokens` list")
        callers: dict[str, Caller] = {}
        for i, entry in enumerate(data["tokens"], 1):
            at = f"{where}: tokens[{i}]"
            if not isinstance(entry, Mapping):
                raise TokensError(f"{at}: expected a map (token, actor, principal, admin)")
            unknown = set(entry) - {"token", "sha256", "actor", "principal", "admin", "name"}
            if unknown:
                raise TokensError(f"{at}: unknown key `{sorted(unknown)[0]}`")
            token, digest = entry.get("token"), entry.get("sha256")
            if (token is None) == (digest is None):
                raise TokensError(f"{at}: give exactly one of `token` and `sha256`")
            if token is not None:
                if not isinstance(token, str) or len(token) < 16:
                    raise TokensError(f"{at}: a token must be a string of 16 characters or more")
                digest = _digest(token)
            elif not (
                isinstance(digest, str)
                and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest)
            ):
                raise TokensError(f"{at}: `sha256` must be 64 lowercase hex digits")
            actor, principal, admin = (
                entry.get("actor"),
                entry.get("principal"),
                entry.get("admin", False),
            )
            if actor is not None and (
                not isinstance(actor, str) or (actors and actor not in actors)
            ):
                known = ", ".join(sorted(actors or ()))
                raise TokensError(
                    f"{at}: `{actor}` is not an actor of the served policies ({known})"
                )
            if principal is not None and (not isinstance(principal, str) or actor is None):
                raise TokensError(f"{at}: a `principal` needs an `actor` (and must be a string)")
            if not isinstance(admin, bool):
                raise TokensError(f"{at}: `admin` must be true or false")
            if actor is None and not admin:
                raise TokensError(f"{at}: give an `actor`, or `admin: true`")
            if digest in callers:
                raise TokensError(f"{at}: the same token appears twice")
            name = str(
                entry.get("name") or (f"{actor}:{principal}" if principal else actor or "admin")
            )
            callers[digest] = Caller(name, actor, principal, admin)
        if not callers:
            raise TokensError(f"{where}: the `tokens` list is empty")
        return cls(callers)


class DevTokens(Tokens):
    """Development only (no tokens file, loopback only): ``dev:ACTOR[:PRINCIPAL]`` or ``dev:admin``."""

    def __init__(self, actors: set[str]) -> None:
        super().__init__({})
        self.actors = actors

    def caller(self, token: str) -> Caller | None:
        parts = token.split(":")
        if len(parts) < 2 or parts[0] != "dev" or len(parts) > 3:
            return None
        if parts[1] == "admin" and len(parts) == 2:
            return Caller("admin", admin=True)
        if parts[1] not in self.actors:
            return None
        return Caller(":".join(parts[1:]), parts[1], parts[2] if len(parts) == 3 else None)

    def __len__(self) -> int:
        return 0
