"""Fuzz the HTTP API from its own OpenAPI document with schemathesis: whatever a client sends
(random bodies, uploads, numbers at and past their bounds, unknown run names), every
operation answers without a 5xx, with a documented status code and content type, and a body
that matches its documented schema (the OpenAPI document is accurate). A bounded number of
cases per operation keeps it quick."""

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install vaekit[serve])")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install vaekit[dev])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from vaekit.serve import create_app  # noqa: E402

from test_api import make_runs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
RUNS = ["digits4", "cvae", "detector"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CASES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    app = create_app(make_runs(tmp_path_factory.mktemp("fuzz") / "runs"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_schema_covers_every_endpoint(api_schema):
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in api_schema.get_all_operations()}
    assert len(operations) >= 12 and "POST /api/runs/{name}/decode" in operations


def test_no_server_errors_and_answers_as_documented(api_schema):
    statuses = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=CASES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_5xx(case):
            name = (case.path_parameters or {}).get("name")
            if name is not None and len(name) % 4:  # most cases reach a real run; the rest try unknown names
                case.path_parameters["name"] = RUNS[len(name) % len(RUNS)]
            statuses.append(case.call_and_validate(checks=CHECKS).status_code)

        no_5xx()
    assert len(statuses) >= 100
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)  # both kinds reached
