"""The OpenAPI document generates a good client: typed answers, our error body on every error
status, bearer and X-API-Key security, stable operationIds, the webhook described. Checked on
the document itself, then by generating a client with openapi-python-client and type-checking
a platform's program against it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest

from grader.api.app import create_app
from grader.api.models import PublicSubmission
from grader.domain import CapturedStream, EnvironmentRef, Observation, RunMode, RunStatus
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.testing import OTHER_KEY, SUBMITTER_KEY, service_settings

PROGRAMS = Path(__file__).parent / "openapi"
GENERATOR = "openapi-python-client==0.29.1"
ERROR_REF = "#/components/schemas/ErrorBody"
OPERATIONS = {
    ("post", "/v1/submissions"): "createSubmission",
    ("post", "/v1/submissions/batch"): "createBatch",
    ("get", "/v1/submissions/{submission_id}"): "getSubmission",
    ("get", "/v1/challenges"): "listChallenges",
    ("get", "/v1/challenges/{set_name}/{challenge_id}"): "getChallenge",
    ("get", "/v1/environments"): "listEnvironments",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The document as the app serves it (no Redis needed to build it)."""
    document: dict[str, Any] = create_app(service_settings("redis://127.0.0.1:1/0")).openapi()
    return document


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def test_operation_ids_are_stable_camel_case_names(schema: dict[str, Any]) -> None:
    """Every operation has a readable camelCase id, unique, and the known ones never change."""
    found = {(m, p): op["operationId"] for m, p, op in operations(schema)}
    assert {k: found.get(k) for k in OPERATIONS} == OPERATIONS
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i) for i in found.values()), found
    assert len(set(found.values())) == len(found)


def test_every_success_answer_has_a_typed_schema(schema: dict[str, Any]) -> None:
    """No 2xx answer is an untyped ``{}``: each names a model (so clients are not all Any)."""
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            content = response.get("content", {})
            if "application/json" not in content:  # a file (CSV, JSON Lines): typed as text
                assert content, (method, path, status)
                assert all(c.get("schema") for c in content.values()), (method, path, status)
                continue
            body = content["application/json"].get("schema")
            assert body, (method, path, status)
            text = json.dumps(body)
            assert "$ref" in text, (method, path, status, body)


def test_every_error_status_answers_our_error_body(schema: dict[str, Any]) -> None:
    """Each 4xx/5xx an operation declares is ``{"error": {...}}``; FastAPI's ``{"detail"}``
    validation error is nowhere, and every keyed operation declares 401, 422 and 503."""
    assert "HTTPValidationError" not in json.dumps(schema)
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        for status, response in responses.items():
            if status[0] not in "45" or path == "/readyz":
                continue
            reference = response["content"]["application/json"]["schema"]["$ref"]
            assert reference == ERROR_REF, (method, path, status)
        if path.startswith("/v1/"):
            assert {"401", "422", "503"} <= set(responses), (method, path)
    submit = schema["paths"]["/v1/submissions"]["post"]["responses"]
    assert {"400", "401", "404", "413", "422", "429", "503"} <= set(submit)
    assert "Retry-After" in submit["429"]["headers"]
    assert "Retry-After" in submit["503"]["headers"]
    assert "409" in schema["paths"]["/v1/submissions/{submission_id}"]["get"]["responses"]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}


def test_bearer_and_api_key_header_are_declared_security_schemes(schema: dict[str, Any]) -> None:
    """Swagger's Authorize button offers a bearer token and an X-API-Key header; every /v1
    operation accepts either, the health checks neither."""
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer grd_...`",
    }
    assert (schemes["apiKey"]["type"], schemes["apiKey"]["in"]) == ("apiKey", "header")
    assert schemes["apiKey"]["name"] == "X-API-Key"
    for _, path, operation in operations(schema):
        expected: list[dict[str, list[str]]] | None = (
            [{"bearer": []}, {"apiKey": []}] if path.startswith("/v1/") else None
        )
        assert operation.get("security") == expected, path


def test_the_webhook_payload_is_described(schema: dict[str, Any]) -> None:
    """OpenAPI 3.1 ``webhooks``: the finished submission, with its timestamp and signature."""
    assert schema["openapi"].startswith("3.1")
    hook = schema["webhooks"]["submission-finished"]["post"]
    assert hook["operationId"] == "submissionFinished"
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PublicSubmission"}
    headers = {p["name"]: p["required"] for p in hook["parameters"] if p["in"] == "header"}
    assert headers == {"x-grader-timestamp": True, "x-grader-signature": True}
    assert set(hook["responses"]) == {"200"}


def test_a_finished_submission_reads_back_as_the_documented_model() -> None:
    """``Submission.public()`` (what routes and webhooks send) has exactly the documented
    fields and parses into ``PublicSubmission`` with its verdict and observation typed."""
    observation = Observation(
        status=RunStatus.COMPLETED,
        environment=EnvironmentRef(name="fastapi-0.115-httpx-0.27", image_id="sha256:ab"),
        mode=RunMode.SCRIPT,
        stdout=CapturedStream(text="2\n", bytes=2),
        exit_code=0,
    )
    submission = Submission(
        id="s1",
        key_id="platform",
        challenge_id="set/one",
        environment="fastapi-0.115-httpx-0.27",
        code="print(2)",
        status=SubmissionStatus.DONE,
        verdict=Verdict(status=VerdictStatus.PASSED, score=1.0, observation=observation),
        environment_packages={"httpx": "0.27.2"},
    )
    public = submission.public()
    assert set(public) == set(PublicSubmission.model_fields)
    parsed = PublicSubmission.model_validate(public)
    assert parsed.result is not None and parsed.result.observation is not None
    assert parsed.result.observation.stdout.text == "2\n"
    assert parsed.result.environment.image_id == "sha256:ab"
    assert parsed.result.environment.packages == {"httpx": "0.27.2"}
    assert parsed.code_bytes == 8
    assert parsed.final


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": f"Bearer {SUBMITTER_KEY}"}, 200),
        ({"Authorization": f"bearer {SUBMITTER_KEY}"}, 200),
        ({"X-API-Key": SUBMITTER_KEY}, 200),
        ({"Authorization": f"Basic {SUBMITTER_KEY}", "X-API-Key": OTHER_KEY}, 200),
        ({"Authorization": f"Basic {SUBMITTER_KEY}"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({}, 401),
    ],
)
async def test_keys_are_read_from_a_bearer_token_or_the_x_api_key_header(
    api: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    """A bearer token (any case of the scheme) or an X-API-Key header authenticates; another
    scheme alone, or an empty bearer, is our 401 error body with WWW-Authenticate."""
    response = await api.get("/v1/environments", headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def _uv() -> str:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        pytest.skip("uv (a dev dependency) is not installed")
    return uv


_OFFLINE = ("Failed to fetch", "Failed to download", "dns error", "Request failed after")


def _skip_if_offline(done: subprocess.CompletedProcess[str]) -> None:
    """uv could not reach the package index: the generator or mypy cannot be had here."""
    if done.returncode != 0 and any(sign in done.stderr for sign in _OFFLINE):
        pytest.skip(f"uv cannot fetch packages here (offline?): {done.stderr[-300:]}")


def _tool(uv: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command in a throwaway environment of uv's (never this project's virtualenv)."""
    return subprocess.run(
        [uv, "tool", "run", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_generated_client_type_checks_a_platforms_program(
    schema: dict[str, Any], tmp_path: Path
) -> None:
    """openapi-python-client makes a client from the document; a program using it passes
    mypy --strict with no expression of type Any, and wrong uses are refused."""
    uv = _uv()
    (tmp_path / "openapi.json").write_text(json.dumps(schema))
    generated = _tool(
        uv,
        "--from",
        GENERATOR,
        "openapi-python-client",
        "generate",
        "--path",
        "openapi.json",
        "--meta",
        "none",
        "--output-path",
        "grader_api_client",
        cwd=tmp_path,
    )
    _skip_if_offline(generated)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    modules = tmp_path / "grader_api_client" / "api" / "submissions"
    assert {p.stem for p in modules.glob("*.py")} >= {"create_submission", "get_submission"}
    for name in ("uses_client", "misuses_client"):
        shutil.copy(PROGRAMS / f"{name}.py.txt", tmp_path / f"{name}.py")
    # The project's own mypy, in uv's environment with what the generated code imports.
    mypy = ("--from", f"mypy=={version('mypy')}", "--with", "attrs", "--with", "httpx", "mypy")
    quiet = ("--strict", "--follow-imports=silent", "--no-incremental")
    good = _tool(uv, *mypy, *quiet, "--disallow-any-expr", "uses_client.py", cwd=tmp_path)
    _skip_if_offline(good)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _tool(uv, *mypy, *quiet, "misuses_client.py", cwd=tmp_path)
    lines = sorted({int(m) for m in re.findall(r"misuses_client\.py:(\d+): error", bad.stdout)})
    assert lines == [10, 12, 13], bad.stdout
