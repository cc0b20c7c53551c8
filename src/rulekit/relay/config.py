"""``relay.yaml``: where the relay delivers each effect, read and checked before anything runs.

The file is checked as a rule file is: YAML errors and schema violations are diagnostics
(RK0901) that point at the line and say how to fix it, a secret whose environment variable
is not set is RK0902, and every problem in the file is reported at once. Secrets are read
from the environment here, once, and never printed (``repr`` leaves them out).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import RuleError
from rulekit.core.source import Source, Span
from rulekit.expr.stdlib import parse_duration

#: A relay.yaml larger than this is refused unread (it is a page of routes, not data).
MAX_CONFIG_BYTES = 1 << 20
#: The one placeholder a JetStream subject may hold.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class ConfigError(RuleError):
    """relay.yaml is not valid: ``diagnostics`` says where and why (``str()`` renders them
    with the line and a caret)."""

    def __init__(self, diagnostics: list[Diagnostic], source: Source | None = None) -> None:
        self.diagnostics = sorted(diagnostics, key=diag.sort_key)
        sources = {source.name: source} if source is not None else None
        super().__init__(diag.render_all(self.diagnostics, sources))


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between deliveries of one effect: ``initial * multiplier**(attempt-1)``, at
    most ``maximum``, with equal jitter (a random time between half and all of it)."""

    initial: timedelta = timedelta(seconds=1)
    maximum: timedelta = timedelta(minutes=10)
    multiplier: float = 2.0


@dataclass(frozen=True)
class WebhookTarget:
    """POST each effect to ``url``, signed with every secret (newest first)."""

    url: str
    secrets: tuple[bytes, ...] = field(repr=False)
    timeout: timedelta = timedelta(seconds=10)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: a 4xx answer (other than 408, 425 and 429) this many times: the dead letters
    dead_after_4xx: int = 3


@dataclass(frozen=True)
class JetStreamTarget:
    """Publish each effect to a NATS JetStream subject, its key as ``Nats-Msg-Id``."""

    subject: str
    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    #: the stream that must capture ``subject`` (checked at start; None: any stream)
    stream: str | None = None
    #: create ``stream`` when it does not exist
    create: bool = False
    duplicate_window: timedelta = timedelta(minutes=10)
    timeout: timedelta = timedelta(seconds=5)
    token: str | None = field(default=None, repr=False)
    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Route:
    """Effects of these names (``None``: every name) go to ``target``."""

    name: str
    effects: frozenset[str] | None
    target: WebhookTarget | JetStreamTarget
    #: where the route starts in relay.yaml (for messages)
    line: int = 0

    def takes(self, effect: str) -> bool:
        return self.effects is None or effect in self.effects


@dataclass(frozen=True)
class RelayConfig:
    """What ``rulekit relay`` does, from relay.yaml (defaults as the file documents them)."""

    routes: tuple[Route, ...]
    store: str | None = None
    concurrency: int = 16
    batch: int = 100
    lease: timedelta = timedelta(seconds=60)
    poll: timedelta = timedelta(seconds=1)
    #: deliveries before the dead letters (None: the store's own setting)
    max_attempts: int | None = None
    retry: RetryPolicy = RetryPolicy()
    #: the file it came from
    path: str = "<relay config>"

    def route(self, effect: str) -> Route | None:
        """The first route that takes effects of this name, if any."""
        return next((r for r in self.routes if r.takes(effect)), None)

    @property
    def names(self) -> frozenset[str] | None:
        """The effect names some route takes (None: every name, a route takes ``*``)."""
        if any(r.effects is None for r in self.routes):
            return None
        return frozenset().union(*(r.effects or () for r in self.routes))


def schema() -> dict[str, Any]:
    """The JSON Schema of relay.yaml (shipped as ``rulekit/schemas/relay.schema.json``)."""
    text = resources.files("rulekit").joinpath("schemas/relay.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> RelayConfig:
    """Read and check relay.yaml; secrets come from ``environ`` (default: ``os.environ``).

    Raises :class:`ConfigError` listing every problem found."""
    import os

    name = str(path)
    try:
        raw = Path(path).read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as e:
        source = Source("", name)
        reason = e.strerror or str(e)
        raise ConfigError(
            [diag.make("RK0901", f"cannot read the file: {reason}", source, Span(0, 0))], source
        ) from None
    return loads_config(raw, name, os.environ if environ is None else environ)


def loads_config(raw: bytes | str, name: str, environ: Mapping[str, str]) -> RelayConfig:
    """:func:`load_config` of a text already read (``name`` is the file's, for messages)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > MAX_CONFIG_BYTES:
        source = Source("", name)
        raise ConfigError(
            [diag.make("RK0901", f"larger than {MAX_CONFIG_BYTES:,} bytes", source, Span(0, 0))],
            source,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        source = Source("", name)
        raise ConfigError(
            [diag.make("RK0901", f"not UTF-8 text (byte {e.start})", source, Span(0, 0))],
            source,
        ) from None
    source = Source(text, name)
    return _Reader(source, environ).config()


class _Reader:
    def __init__(self, source: Source, environ: Mapping[str, str]) -> None:
        self.source = source
        self.environ = environ
        self.problems: list[Diagnostic] = []

    def error(
        self, code: str, message: str, node: yaml.Node | None, help_: str | None = None
    ) -> None:
        start = node.start_mark.index if node is not None else 0
        end = node.end_mark.index if node is not None else 0
        if node is not None and node.start_mark.line != node.end_mark.line:
            end = self.source.text.find("\n", start)  # a block: underline its first line
            end = len(self.source.text) if end < 0 else end
        self.problems.append(diag.make(code, message, self.source, Span(start, end), help=help_))

    def fail(self) -> ConfigError:
        return ConfigError(self.problems, self.source)

    def config(self) -> RelayConfig:
        from rulekit.policy.yaml_form import node_at, schema_problem, yaml_problem

        text = self.source.text
        try:
            alias = next(
                (
                    e
                    for e in yaml.parse(text, Loader=yaml.SafeLoader)
                    if isinstance(e, yaml.AliasEvent)
                ),
                None,
            )
            if alias is not None:  # pointed at, `*name` itself: the place to write the values
                start, end = alias.start_mark, alias.end_mark
                span = Span(start.index, end.index) if start and end else Span(0, 0)
                self.problems.append(
                    diag.make(
                        "RK0901",
                        "YAML aliases (`*name`) are not allowed here",
                        self.source,
                        span,
                        help="write the values out",
                    )
                )
                raise self.fail()
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            what, help_, offset = yaml_problem(e, text)
            self.problems.append(
                diag.make("RK0901", what, self.source, Span(offset, offset + 1), help=help_)
            )
            raise self.fail() from None
        if root is None or not isinstance(data, dict):
            self.error("RK0901", "relay.yaml is a map with a `routes:` list", root)
            raise self.fail()
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema())
        for error in sorted(
            validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
        ):
            message, help_, path = _pattern_problem(error) or schema_problem(error)
            self.error("RK0901", message, node_at(root, path), help_)
        if self.problems:
            raise self.fail()
        routes = [
            self.route(i, r, node_at(root, ["routes", i])) for i, r in enumerate(data["routes"])
        ]
        self.unreachable(routes, root)
        retry = data.get("retry", {})
        config = RelayConfig(
            routes=tuple(routes),
            store=data.get("store"),
            concurrency=data.get("concurrency", 16),
            batch=data.get("batch", 100),
            lease=self.duration(data, "lease", root, timedelta(seconds=60)),
            poll=self.duration(data, "poll", root, timedelta(seconds=1)),
            max_attempts=data.get("max_attempts"),
            retry=RetryPolicy(
                initial=self.duration(
                    retry, "initial", node_at(root, ["retry"]), timedelta(seconds=1)
                ),
                maximum=self.duration(
                    retry, "max", node_at(root, ["retry"]), timedelta(minutes=10)
                ),
                multiplier=float(retry.get("multiplier", 2.0)),
            ),
            path=self.source.name,
        )
        if config.retry.initial > config.retry.maximum:
            self.error(
                "RK0901",
                "`retry.initial` is longer than `retry.max`",
                node_at(root, ["retry", "initial"]),
            )
        if config.lease <= timedelta(0):
            self.error("RK0901", "`lease` must be longer than 0", node_at(root, ["lease"]))
        if self.problems:
            raise self.fail()
        return config

    def duration(
        self, data: Mapping[str, Any], key: str, parent: yaml.Node, default: timedelta
    ) -> timedelta:
        from rulekit.expr.stdlib import CelError
        from rulekit.policy.yaml_form import node_at

        text = data.get(key)
        if text is None:
            return default
        try:
            value = parse_duration(str(text))
        except CelError as e:
            self.error("RK0901", str(e), node_at(parent, [key]))
            return default
        if value < timedelta(0):
            self.error("RK0901", f"`{key}` cannot be negative", node_at(parent, [key]))
            return default
        return value

    def secret(self, var: str, node: yaml.Node, route: str) -> str:
        value = self.environ.get(var)
        if not value:
            self.error(
                "RK0902",
                f"route `{route}`: the environment variable {var} is "
                f"{'empty' if value == '' else 'not set'}",
                node,
                f"export {var} before starting the relay (its value is the shared secret)",
            )
            return ""
        return value

    def route(self, index: int, data: Mapping[str, Any], node: yaml.Node) -> Route:
        from rulekit.policy.yaml_form import node_at

        name = str(data.get("name") or f"route{index + 1}")
        names = data["effects"]
        effects = None if names == "*" or "*" in names else frozenset(names)
        line = node.start_mark.line + 1
        target: WebhookTarget | JetStreamTarget
        if "webhook" in data:
            w, wn = data["webhook"], node_at(node, ["webhook"])
            env = w["secret_env"]
            # each variable with its own node: an error points at the one not set
            paths: list[list[Any]] = (
                [["secret_env"]]
                if isinstance(env, str)
                else [["secret_env", i] for i in range(len(env))]
            )
            envs = [env] if isinstance(env, str) else list(env)
            target = WebhookTarget(
                url=w["url"],
                secrets=tuple(
                    self.secret(v, node_at(wn, path), name).encode()
                    for v, path in zip(envs, paths, strict=True)
                ),
                timeout=self.duration(w, "timeout", wn, timedelta(seconds=10)),
                headers=dict(w.get("headers", {})),
                dead_after_4xx=w.get("dead_after_4xx", 3),
            )
            reserved = {h.lower() for h in target.headers} & _RESERVED_HEADERS
            if reserved:
                self.error(
                    "RK0901",
                    f"header {sorted(reserved)[0]} is set by the relay",
                    node_at(wn, ["headers"]),
                    "leave it out: every delivery carries it",
                )
        else:
            j, jn = data["jetstream"], node_at(node, ["jetstream"])
            subject = str(j["subject"])
            for m in _PLACEHOLDER.finditer(subject):
                if m[1] != "name":
                    self.error(
                        "RK0901",
                        f"unknown placeholder `{{{m[1]}}}` in the subject",
                        node_at(jn, ["subject"]),
                        "the subject may hold `{name}`, the effect's name",
                    )
            if ("user_env" in j and "password_env" not in j) or (
                "password_env" in j and "user_env" not in j
            ):
                self.error("RK0901", "give `user_env` and `password_env` together", jn)
            target = JetStreamTarget(
                subject=subject,
                servers=tuple(j.get("servers", ("nats://127.0.0.1:4222",))),
                stream=j.get("stream"),
                create=bool(j.get("create", False)),
                duplicate_window=self.duration(j, "duplicate_window", jn, timedelta(minutes=10)),
                timeout=self.duration(j, "timeout", jn, timedelta(seconds=5)),
                token=self.secret(j["token_env"], node_at(jn, ["token_env"]), name)
                if "token_env" in j
                else None,
                user=self.secret(j["user_env"], node_at(jn, ["user_env"]), name)
                if "user_env" in j
                else None,
                password=self.secret(j["password_env"], node_at(jn, ["password_env"]), name)
                if "password_env" in j
                else None,
            )
            if target.create and target.stream is None:
                self.error("RK0901", "`create: true` needs the `stream` to create", jn)
        return Route(name, effects, target, line)

    def unreachable(self, routes: list[Route], root: yaml.Node) -> None:
        """A route after one that takes everything, or whose every name an earlier route
        takes, never receives an effect: say so rather than leave it silently idle."""
        from rulekit.policy.yaml_form import node_at

        names = [r.name for r in routes]
        for i, r in enumerate(routes):
            if names.index(r.name) != i:
                self.error(
                    "RK0901",
                    f"two routes are named `{r.name}`",
                    node_at(root, ["routes", i, "name"]),
                )
            earlier = routes[:i]
            if any(e.effects is None for e in earlier):
                self.error(
                    "RK0901",
                    f"route `{r.name}` comes after a route that takes every effect (`*`)",
                    node_at(root, ["routes", i]),
                    "move the `*` route last",
                )
            elif r.effects is not None and all(any(e.takes(n) for e in earlier) for n in r.effects):
                self.error(
                    "RK0901",
                    f"every effect route `{r.name}` names an earlier route takes",
                    node_at(root, ["routes", i, "effects"]),
                )


#: What a value the schema checks with a pattern must be, by its key (the schema's regular
#: expression is no help to someone writing the file).
_PATTERN_WORDS = {
    **dict.fromkeys(
        ("lease", "poll", "initial", "max", "timeout", "duplicate_window"),
        ("a duration", "a number and a unit, as in rule files: 500ms, 10s, 2m, 1h"),
    ),
    "url": (
        "an http:// or https:// URL",
        "the receiver's whole URL, as in https://example.com/hooks/rulekit",
    ),
    "servers": ("a nats:// or tls:// URL", "as in nats://127.0.0.1:4222"),
    **dict.fromkeys(
        ("secret_env", "token_env", "user_env", "password_env"),
        ("an environment variable's name", "letters, digits and `_`, not starting with a digit"),
    ),
}


def _pattern_problem(error: Any) -> tuple[str, str | None, list[Any]] | None:
    """A value that does not match its pattern, or is not even text (``lease: 60``), in
    words (None: another kind of problem)."""
    if error.validator not in ("pattern", "type"):
        return None
    keys = [k for k in error.absolute_path if isinstance(k, str)]
    words = _PATTERN_WORDS.get(keys[-1]) if keys else None
    if words is None or (error.validator == "type" and "string" not in str(error.validator_value)):
        return None
    return f"`{error.instance}` is not {words[0]}", words[1], list(error.absolute_path)


#: Headers every delivery carries, which a route's ``headers`` may not set.
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "idempotency-key",
        "rulekit-effect-key",
        "rulekit-delivery-attempt",
        "rulekit-signature",
        "user-agent",
    }
)
