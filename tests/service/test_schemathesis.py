"""Schemathesis against the service's own OpenAPI document: no input gets a 5xx, and every
answer, errors included, is what the document declares (its media type and its schema: the
routes render their bodies themselves, so FastAPI no longer checks them against it).

Every operation of /openapi.json, with an admin token, on a SQLite store, with
data that fits the schema (positive) and data that does not (negative);
bounded (a fixed number of derandomized examples per operation and mode) so it
runs the same way, quickly, every time. Half of the generated case ids are
replaced by a real case's, so the event and fact endpoints see real cases too.

(schemathesis's own pytest loaders are not used: ``from_fixture`` does not
work with the pytest installed; each test draws from an operation's strategy.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from rulekit import policy as policies
from rulekit.policy import Policy
from rulekit.service.app import Service, create_app
from rulekit.service.auth import DevTokens, Tokens
from rulekit.stores import SqlStore, open_store

from .service_support import POLICY_FILE, auth, make_client, open_case


@schemathesis.serializer("application/x-ndjson")
def _json_lines(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """POST /cases/import's body (an export: JSON Lines), as the generated text."""
    return (value if isinstance(value, str) else repr(value)).encode()


EXAMPLES = 15  # per operation and mode: ~400 requests in all, a few seconds


def _operations() -> list[tuple[str, bool]]:
    """Each operation's label, and whether it takes input that can be made invalid (a body or
    query parameters: path parameters and headers are strings whatever is sent), read from the
    document of an app on a throwaway store."""
    kuaishou = policies.load(POLICY_FILE)
    with open_store(":memory:", migrate=True) as store:
        app = create_app(Service(store, [kuaishou], DevTokens(set()), worker_interval=None))
        document = app.openapi()
    return [
        (
            f"{method.upper()} {path}",
            "requestBody" in operation
            or any(p["in"] == "query" for p in operation.get("parameters", ())),
        )
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


OPERATIONS = _operations()
CASES = [(label, GenerationMode.POSITIVE) for label, _ in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label, negatable in OPERATIONS if negatable
]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{lb}-{m.value}" for lb, m in CASES])
def test_no_server_errors(
    label: str, mode: GenerationMode, sqlite_store: SqlStore, kuaishou: Policy, tokens: Tokens
) -> None:
    with make_client(sqlite_store, kuaishou, tokens) as api:
        real = open_case(api)["id"]
        schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
        operation = schema.find_operation_by_label(label)
        assert operation is not None, label

        @given(case=operation.as_strategy(mode), real_id=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case, real_id: bool) -> None:
            if real_id and "case_id" in (case.path_parameters or {}):
                case.path_parameters["case_id"] = real
            case.call_and_validate(
                headers=auth("admin"),
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        run()
