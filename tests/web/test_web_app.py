"""vitest unit tests and the generated TypeScript client's freshness."""

from __future__ import annotations

from tests.web.conftest import npm


def test_vitest_unit_tests_pass() -> None:
    r = npm("test", "--silent")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


def test_generated_client_matches_the_openapi_schema() -> None:
    r = npm("run", "--silent", "check:client")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_typescript_typechecks() -> None:
    r = npm("run", "--silent", "typecheck")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
