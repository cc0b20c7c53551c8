"""Service-level tests: the HTTP API, authorization, schemathesis and the real processes."""
