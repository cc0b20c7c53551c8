"""The service tests' fixtures (stores on SQLite and PostgreSQL, the shipped policy, tokens,
clients), for the security tests that attack the service and its stores."""

from service.conftest import (  # noqa: F401  (fixtures, found by name)
    any_client,
    any_store,
    kuaishou,
    lax_client,
    lax_kuaishou,
    postgres_dsn,
    postgres_store,
    sqlite_store,
    tokens,
)
