"""Seeded generator of distinct, well-typed conditions over declared fields.

Used to measure compile time on many *different* conditions (a policy file
has hundreds of guards, each compiled once), so nothing is served from a
cache. Conditions are built from a typed grammar: every sub-expression is
generated for the type its context needs, so each one should check; a
condition that does not is a generator bug or a rulekit bug, and the
benchmark reports it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

#: The declared facts the conditions read.
DECLARATIONS: dict[str, str] = {
    "order.amount": "money",
    "order.discount": "money",
    "order.shipping_fee": "money",
    "order.quantity": "int",
    "order.lines": "int",
    "order.shipped": "bool",
    "order.gift": "bool",
    "order.paid_at": "time",
    "order.created_at": "time",
    "order.return_window": "duration",
    "order.currency": "string",
    "order.channel": "string",
    "customer.email": "string",
    "customer.tier": "string",
    "customer.vip": "bool",
    "customer.orders": "int",
    "customer.joined_at": "time",
    "customer.tags": "list(string)",
    "shop.fast_refund_enabled": "bool",
    "shop.region": "string",
    "shop.max_refund": "money",
    "shop.grace": "duration",
}


def _fields(kind: str) -> list[str]:
    return [name for name, t in DECLARATIONS.items() if t == kind]


_BOOL_FIELDS = _fields("bool")
_INT_FIELDS = _fields("int")
_MONEY_FIELDS = _fields("money")
_TIME_FIELDS = _fields("time")
_DURATION_FIELDS = _fields("duration")
_STRING_FIELDS = _fields("string")

_WORDS = ("eu", "us", "apac", "gold", "silver", "web", "app", "pos", "EUR", "USD", "vip", "new")
_ZONES = ("UTC", "Europe/Berlin", "Asia/Shanghai", "America/New_York", "+05:30")
_PATTERNS = ("^[a-z]+@", "@example[.]com$", "^[a-z0-9._]+@[a-z]+[.][a-z]{2,}$", "[0-9]{3}")
_STRING_TESTS = ("startsWith", "endsWith", "contains")
_SIZE_FORMS = ("size({})", "{}.size()")
_ACCESSORS = ("getHours", "getDayOfWeek", "getMonth")
_ORDER = ("<", "<=", ">", ">=")
_EQUALITY = ("==", "!=")


class ConditionGenerator:
    """Random well-typed expressions; ``condition()`` yields a boolean one."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # -- helpers ------------------------------------------------------------------------
    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return self.rng.choice(options)

    def weighted(self, *options: tuple[int, Callable[[], str]]) -> str:
        """Call one of the builders, chosen by weight."""
        builders = [b for _, b in options]
        (builder,) = self.rng.choices(builders, weights=[w for w, _ in options])
        return builder()

    def int_literal(self, low: int = 0, high: int = 100) -> str:
        return str(self.rng.randint(low, high))

    def money_literal(self) -> str:
        cents = f"{self.rng.randint(0, 999)}.{self.rng.randint(0, 99):02d}"
        return self.pick((str(self.rng.randint(1, 999)), cents))

    def duration_literal(self) -> str:
        return self.pick(
            (
                f"{self.rng.randint(1, 72)}h",
                f"{self.rng.randint(1, 90)}d",
                f"{self.rng.randint(1, 12)}h{self.rng.randint(1, 59)}m",
                f"{self.rng.randint(1, 600)}s",
                f"{self.rng.randint(1, 999)}ms",
                f'duration("{self.rng.randint(1, 48)}h")',
            )
        )

    def timestamp_literal(self) -> str:
        month, day = self.rng.randint(1, 12), self.rng.randint(1, 28)
        return f'timestamp("2026-{month:02d}-{day:02d}T08:00:00Z")'

    def string_literal(self) -> str:
        return f'"{self.pick(_WORDS)}"'

    def list_literal(self, item: Callable[[], str]) -> str:
        return "[" + ", ".join(item() for _ in range(self.rng.randint(1, 4))) + "]"

    def op(self, *groups: tuple[str, ...]) -> str:
        return self.pick([o for g in groups for o in g])

    # -- typed expressions --------------------------------------------------------------
    def boolean(self, depth: int) -> str:
        if depth <= 0:
            return self.weighted(
                (3, lambda: self.pick(_BOOL_FIELDS)),
                (3, lambda: self.comparison(0)),
                (2, lambda: self.string_test(0)),
                (1, lambda: f"!{self.pick(_BOOL_FIELDS)}"),
            )
        sub = depth - 1
        return self.weighted(
            (2, lambda: self.pick(_BOOL_FIELDS)),
            (2, lambda: f"not ({self.boolean(sub)})"),
            (3, lambda: f"({self.boolean(sub)} {self.pick(('and', '&&'))} {self.boolean(sub)})"),
            (3, lambda: f"({self.boolean(sub)} {self.pick(('or', '||'))} {self.boolean(sub)})"),
            (6, lambda: self.comparison(sub)),
            (4, lambda: self.string_test(sub)),
            (1, lambda: f"({self.boolean(sub)} ? {self.boolean(sub)} : {self.boolean(sub)})"),
            (2, lambda: self.list_test(sub)),
            (1, lambda: f"has({self.pick(list(DECLARATIONS))})"),
        )

    def comparison(self, depth: int) -> str:
        return self.weighted(
            (
                3,
                lambda: f"{self.integer(depth)} {self.op(_ORDER, _EQUALITY)} {self.integer(depth)}",
            ),
            (4, lambda: f"{self.money(depth)} {self.op(_ORDER, _EQUALITY)} {self.money_literal()}"),
            (2, lambda: f"{self.money(depth)} {self.op(_ORDER)} {self.money(depth)}"),
            (3, lambda: f"{self.duration(depth)} {self.op(_ORDER)} {self.duration(depth)}"),
            (2, lambda: f"{self.time(depth)} {self.op(_ORDER)} {self.time(depth)}"),
            (1, lambda: f"{self.integer(depth)} in {self.list_literal(self.int_literal)}"),
            (1, lambda: f"{self.pick(_BOOL_FIELDS)} == {self.pick(('true', 'false'))}"),
        )

    def string_test(self, depth: int) -> str:
        s = self.string(depth)
        return self.weighted(
            (2, lambda: f"{s} {self.op(_EQUALITY)} {self.string_literal()}"),
            (2, lambda: f"{s}.{self.pick(_STRING_TESTS)}({self.string_literal()})"),
            (2, lambda: f"{s} in {self.list_literal(self.string_literal)}"),
            (
                2,
                lambda: (
                    f"{self.pick(_SIZE_FORMS).format(s)} {self.op(_ORDER)} {self.int_literal(0, 30)}"
                ),
            ),
            (1, lambda: f'{s}.matches("{self.pick(_PATTERNS)}")'),
        )

    def list_test(self, depth: int) -> str:
        return self.weighted(
            (2, lambda: f"{self.string(depth)} in customer.tags"),
            (2, lambda: f"size(customer.tags) {self.op(_ORDER)} {self.int_literal(0, 5)}"),
            (1, lambda: f"customer.tags.exists(t, t.startsWith({self.string_literal()}))"),
            (
                1,
                lambda: (
                    f"customer.tags.all(t, size(t) {self.op(_ORDER)} {self.int_literal(1, 12)})"
                ),
            ),
        )

    def integer(self, depth: int) -> str:
        if depth <= 0:
            return self.weighted(
                (3, lambda: self.pick(_INT_FIELDS)),
                (2, lambda: self.int_literal()),
                (1, lambda: f"size({self.pick(_STRING_FIELDS)})"),
            )
        sub = depth - 1
        return self.weighted(
            (3, lambda: self.pick(_INT_FIELDS)),
            (1, lambda: self.int_literal()),
            (2, lambda: f"({self.integer(sub)} {self.op(('+', '-', '*'))} {self.integer(sub)})"),
            (1, lambda: f"({self.integer(sub)} {self.op(('/', '%'))} {self.int_literal(1, 9)})"),
            (1, lambda: f"size({self.string(sub)})"),
            (1, lambda: "customer.tags.size()"),
            (1, lambda: f"({self.boolean(sub)} ? {self.integer(sub)} : {self.integer(sub)})"),
            (1, lambda: f"int({self.money(sub)})"),
            (
                1,
                lambda: f'{self.pick(_TIME_FIELDS)}.{self.pick(_ACCESSORS)}("{self.pick(_ZONES)}")',
            ),
            (1, lambda: f"{self.duration(sub)}.getMinutes()"),
        )

    def money(self, depth: int) -> str:
        if depth <= 0:
            return self.pick(_MONEY_FIELDS)
        sub = depth - 1
        return self.weighted(
            (4, lambda: self.pick(_MONEY_FIELDS)),
            (2, lambda: f"({self.money(sub)} {self.op(('+', '-'))} {self.money(sub)})"),
            (2, lambda: f"({self.money(sub)} {self.op(('+', '-'))} {self.money_literal()})"),
            (
                1,
                lambda: (
                    f"({self.money(sub)} * {self.pick((self.int_literal(1, 5), *_INT_FIELDS))})"
                ),
            ),
            (1, lambda: f"({self.money(sub)} / {self.int_literal(1, 12)})"),
            (1, lambda: f"({self.boolean(sub)} ? {self.money(sub)} : {self.money(sub)})"),
            (1, lambda: f'money("{self.money_literal()}")'),
        )

    def duration(self, depth: int) -> str:
        if depth <= 0:
            return self.weighted(
                (2, lambda: self.pick(_DURATION_FIELDS)),
                (3, lambda: f"since({self.pick(_TIME_FIELDS)})"),
                (2, lambda: self.duration_literal()),
            )
        sub = depth - 1
        return self.weighted(
            (2, lambda: self.pick(_DURATION_FIELDS)),
            (3, lambda: f"since({self.time(sub)})"),
            (2, lambda: self.duration_literal()),
            (2, lambda: f"({self.duration(sub)} {self.op(('+', '-'))} {self.duration(sub)})"),
            (1, lambda: f"({self.time(sub)} - {self.time(sub)})"),
            (1, lambda: f"({self.boolean(sub)} ? {self.duration(sub)} : {self.duration(sub)})"),
        )

    def time(self, depth: int) -> str:
        if depth <= 0:
            return self.pick([*_TIME_FIELDS, "now"])
        sub = depth - 1
        return self.weighted(
            (3, lambda: self.pick(_TIME_FIELDS)),
            (1, lambda: "now"),
            (2, lambda: f"({self.time(sub)} {self.op(('+', '-'))} {self.duration(sub)})"),
            (1, lambda: self.timestamp_literal()),
        )

    def string(self, depth: int) -> str:
        if depth <= 0:
            return self.pick(_STRING_FIELDS)
        sub = depth - 1
        return self.weighted(
            (4, lambda: self.pick(_STRING_FIELDS)),
            (1, lambda: f"({self.string(sub)} + {self.string_literal()})"),
            (1, lambda: f"string({self.integer(sub)})"),
            (1, lambda: f"({self.boolean(sub)} ? {self.string(sub)} : {self.string(sub)})"),
            (1, lambda: "customer.tags[0]"),
        )

    # -- conditions -------------------------------------------------------------------
    def condition(self) -> str:
        """A guard as a policy author writes one: 1-5 clauses joined by and/or."""
        depths = (0, 1, 1, 2, 2, 3)
        text = self.boolean(self.rng.choice(depths))
        for _ in range(self.rng.randint(0, 4)):
            clause = self.boolean(self.rng.choice(depths))
            text += f" {self.pick(('and', 'and', 'or', '&&', '||'))} {clause}"
        return text


def generate(count: int, seed: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """``count`` distinct conditions (none of them in ``exclude``), reproducible from ``seed``."""
    gen = ConditionGenerator(seed)
    seen: set[str] = set(exclude)
    out: list[str] = []
    while len(out) < count:
        text = gen.condition()
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def shape(source: str) -> str:
    """The condition with every literal and field name blanked: its structure alone."""
    text = re.sub(r'"[^"]*"', "S", source)
    text = re.sub(r"\b\d[\w.]*", "N", text)
    return re.sub(r"\b(order|customer|shop)\.\w+", "F", text)


# -- facts for the cross-check ------------------------------------------------------------

_ZONE_8 = timezone(timedelta(hours=8))
_STRINGS = ("alice@example.com", "bob.smith@shop.io", "eu", "US", "gold", "web", "", "x123")


def random_facts(rng: random.Random, now: datetime) -> dict[str, Any]:
    """A random value for every declared field, as nested plain dicts."""
    values: dict[str, Any] = {}
    for name, kind in DECLARATIONS.items():
        if kind == "bool":
            v: Any = rng.random() < 0.5
        elif kind == "int":
            v = rng.randint(0, 50)
        elif kind == "money":
            v = Decimal(rng.randint(0, 100000)).scaleb(-2)
        elif kind == "time":
            t = now - timedelta(seconds=rng.randint(-86400, 90 * 86400))
            v = t.astimezone(_ZONE_8) if rng.random() < 0.2 else t.astimezone(UTC)
        elif kind == "duration":
            v = timedelta(seconds=rng.randint(0, 30 * 86400))
        elif kind == "string":
            v = rng.choice(_STRINGS)
        else:  # list(string)
            v = [rng.choice(_WORDS) for _ in range(rng.randint(0, 4))]
        top, field = name.split(".")
        values.setdefault(top, {})[field] = v
    return values
