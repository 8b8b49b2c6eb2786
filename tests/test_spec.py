"""Every provider's routes and spec agree, and schemathesis finds nothing against the app."""

from __future__ import annotations

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
import yaml
from hypothesis import given
from starlette.testclient import TestClient

from contracts.registry import suite_of
from contracts.verify import authenticate
from simulator import available_providers
from simulator.kit.provider import Provider, snake_case
from tests.conftest import AppFactory

# Every provider's record (each provider's package loaded).
PROVIDERS = available_providers()

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
# A schema-valid request may still name an id that does not exist or carry a file whose
# contents the schema cannot describe; the providers document 4xx answers for those.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


def spec_operation_ids(provider: Provider) -> set[str]:
    document = yaml.safe_load(provider.spec_file.read_text(encoding="utf-8"))
    return {
        snake_case(operation["operationId"])
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_routes_match_spec_operations(provider: Provider) -> None:
    assert set(provider.operations()) == spec_operation_ids(provider) - set(provider.unsupported)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_schemathesis_finds_nothing_against_the_app(
    provider: Provider, app_factory: AppFactory
) -> None:
    app = app_factory(journal_size=100_000)
    with TestClient(app, base_url=f"http://testserver{provider.mount}") as http:
        listing = http.get("http://testserver/_sim/providers").json()["providers"]
        credentials = next(p["credentials"] for p in listing if p["name"] == provider.name)
        headers = suite_of(provider.name).auth_headers(http, credentials)  # type: ignore[arg-type]
    schema = schemathesis.openapi.from_asgi(f"{provider.mount}/openapi.json", app)
    schema.config.update(base_url=f"http://testserver{provider.mount}")
    authenticate(schema, headers)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        # The spec's examples first (they reach real successes), then generated cases.
        phases = [*schema.get_strategies_from_examples(operation), operation.as_strategy()]
        for strategy in phases:

            @given(case=strategy)
            @hypothesis.settings(max_examples=40, deadline=None, database=None)
            def check(case: object) -> None:
                case.call_and_validate(excluded_checks=EXCLUDED)  # type: ignore[attr-defined]

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its findings
                failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The run must have got through auth and validation to real answers, not only rejections.
    succeeded = {e.operation for e in app.state.sim.journal if 200 <= e.status < 300}
    assert set(provider.operations()) <= succeeded


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_negative_data_is_rejected_in_the_providers_own_shape(
    provider: Provider, app_factory: AppFactory
) -> None:
    """Invalid requests: never a 5xx, and every rejection is a response the spec documents."""
    app = app_factory()
    with TestClient(app, base_url=f"http://testserver{provider.mount}") as http:
        listing = http.get("http://testserver/_sim/providers").json()["providers"]
        credentials = next(p["credentials"] for p in listing if p["name"] == provider.name)
        headers = suite_of(provider.name).auth_headers(http, credentials)  # type: ignore[arg-type]
    schema = schemathesis.openapi.from_asgi(f"{provider.mount}/openapi.json", app)
    schema.config.update(base_url=f"http://testserver{provider.mount}")
    authenticate(schema, headers)
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ]
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
        @hypothesis.settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=[hypothesis.HealthCheck.filter_too_much],
        )
        def check(case: object) -> None:
            case.call_and_validate(checks=checks)  # type: ignore[attr-defined]

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            continue  # every input is valid for this operation: nothing negative to send
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its findings
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert not app.state.sim.crashes
