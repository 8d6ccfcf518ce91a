"""The gateway's OpenAPI document is the contract: schemathesis generates requests from it
(examples first, then fuzzed data) against the real stack and checks that nothing answers 5xx
and every documented response matches its schema."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from kiln_devstack.stack import Stack, StackConfig
from schemathesis.checks import not_a_server_error, response_schema_conformance
from support.kiln_gateway_helpers import RESEARCHER

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: the fuzzer acts as a researcher (it may block, delete, export), and
    its result must not depend on what other tests left on a shared storage root."""
    with Stack(StackConfig(var_dir=tmp_path_factory.mktemp("kiln-contract"))) as running:
        yield running


def test_no_5xx_and_no_schema_violations(own_stack: Stack) -> None:
    stack = own_stack
    # Driven by hand rather than by schemathesis' pytest plugin, whose lazy fixture loader
    # does not work with pytest 9; the generation and the checks are schemathesis' own.
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            # As a researcher, so the research routes are exercised beyond their 401.
            case.call_and_validate(
                base_url=stack.gateway_url,
                headers=RESEARCHER,
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            exercise()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}"[:2000])
    assert operations >= 17
    assert not failures, "\n\n".join(failures)


def test_the_document_is_complete_with_examples(stack: Stack) -> None:
    document = httpx.get(f"{stack.gateway_url}/openapi.json").json()
    paths = document["paths"]
    expected = {
        ("post", "/api/runs"),
        ("get", "/api/runs"),
        ("get", "/api/runs/{run_id}"),
        ("get", "/api/runs/{run_id}/events"),
        ("post", "/api/runs/{run_id}/cancel"),
        ("get", "/api/runs/{run_id}/files/{filename}"),
        ("get", "/api/media/{kind}/{run_id}"),
        ("get", "/api/media/{kind}/{run_id}/{index}"),
        ("put", "/api/runs/{run_id}/entities/{filename}/block"),
        ("delete", "/api/runs/{run_id}/entities/{filename}/block"),
        ("delete", "/api/runs/{run_id}"),
        ("post", "/api/deletions"),
        ("post", "/api/sessions"),
        ("post", "/api/sessions/join"),
        ("get", "/api/me"),
        ("get", "/api/workflows"),
        ("get", "/api/system"),
    }
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert expected <= documented, expected - documented
    for method, path in expected:
        operation = paths[path][method]
        errors = {code for code in operation["responses"] if code.startswith(("4", "5"))}
        assert {"400", "503"} <= errors, (method, path)
    schemas = document["components"]["schemas"]
    for name in ("CreateRunRequest", "RunAccepted", "RunRecord", "ErrorBody", "WorkshopSession"):
        assert schemas[name].get("examples"), name
