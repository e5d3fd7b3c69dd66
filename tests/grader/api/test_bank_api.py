"""The bank's routes in-process, on the session's real Redis (no worker: uploads stay
``validating``; the end-to-end test, ``tests/integration/test_bank_e2e.py``, validates them)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import yaml

from grader.testing import INSTRUCTOR_KEY, SUBMITTER_KEY

pytestmark = pytest.mark.asyncio

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
INSTRUCTOR = {"Authorization": f"Bearer {INSTRUCTOR_KEY}"}
YAML = {**INSTRUCTOR, "Content-Type": "application/yaml"}


def fresh_set() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def challenge(set_name: str, ident: str = "hello") -> dict[str, Any]:
    return {
        "set": set_name,
        "id": ident,
        "title": "Greeting",
        "kind": "output",
        "prompt": "Print hello.",
        "code": 'print("hello")',
        "expectation": {"output": {"stdout": "hello\n"}},
    }


async def test_an_upload_is_validating_and_hidden_from_learners(api: httpx.AsyncClient) -> None:
    """POST answers 202 validating with its revision; learners cannot submit to it yet."""
    set_name = fresh_set()
    created = await api.post(
        "/v1/challenges", content=yaml.safe_dump(challenge(set_name)), headers=YAML
    )
    assert created.status_code == 202, created.text
    body = created.json()
    assert (body["id"], body["status"], body["new"], body["published"]) == (
        f"{set_name}/hello",
        "validating",
        True,
        None,
    )
    assert len(body["revision"]) == 16
    report = await api.get(f"/v1/challenges/{set_name}/hello/validation", headers=INSTRUCTOR)
    assert report.status_code == 200
    assert (report.json()["status"], report.json()["report"]) == ("validating", None)
    refused = await api.post(
        "/v1/submissions",
        json={"challenge_id": f"{set_name}/hello", "code": 'print("hello")'},
        headers=SUBMITTER,
    )
    assert refused.status_code == 404
    listed = await api.get("/v1/challenges", params={"set": set_name}, headers=SUBMITTER)
    assert listed.json()["count"] == 0


async def test_post_of_an_existing_challenge_is_a_conflict_and_put_is_unchanged(
    api: httpx.AsyncClient,
) -> None:
    """POST twice: 409 naming PUT; PUT with the same content: 200, not new, same revision."""
    set_name = fresh_set()
    text = yaml.safe_dump(challenge(set_name))
    first = (await api.post("/v1/challenges", content=text, headers=YAML)).json()
    again = await api.post("/v1/challenges", content=text, headers=YAML)
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "conflict",
        "message": f"challenge '{set_name}/hello' exists; "
        f"PUT /v1/challenges/{set_name}/hello replaces it",
    }
    put = await api.put(f"/v1/challenges/{set_name}/hello", content=text, headers=YAML)
    assert put.status_code == 200
    assert (put.json()["revision"], put.json()["new"]) == (first["revision"], False)


async def test_json_is_accepted_too(api: httpx.AsyncClient) -> None:
    """A JSON body uploads the same challenge as its YAML: the same revision."""
    set_name = fresh_set()
    as_json = await api.post(
        "/v1/challenges",
        content=json.dumps(challenge(set_name)),
        headers={**INSTRUCTOR, "Content-Type": "application/json"},
    )
    assert as_json.status_code == 202, as_json.text
    as_yaml = await api.put(
        f"/v1/challenges/{set_name}/hello",
        content=yaml.safe_dump(challenge(set_name)),
        headers=YAML,
    )
    assert as_yaml.json()["revision"] == as_json.json()["revision"]


async def test_an_invalid_challenge_gets_every_problem_with_line_and_field(
    api: httpx.AsyncClient,
) -> None:
    """422 lists each loader problem: file (from ?path=), line, field and message."""
    text = (
        "title: Broken\n"
        "kind: output\n"
        "prompt: P\n"
        "code: print(1)\n"
        "environment: nowhere-1.0\n"
        "expectation:\n"
        "  output:\n"
        "    match: regex\n"
        '    stdout: "(1"\n'
    )
    answer = await api.post(
        "/v1/challenges", params={"path": "demo-set/broken.yaml"}, content=text, headers=YAML
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid"
    problems = error["problems"]
    assert [(p["file"], p["line"], p["field"]) for p in problems] == [
        ("demo-set/broken.yaml", "5", "environment"),
        ("demo-set/broken.yaml", "9", "expectation.output.stdout"),
    ]
    assert problems[0]["message"].startswith("unknown environment 'nowhere-1.0'; known: ")
    assert problems[1]["message"] == (
        "Value error, invalid regex '(1': missing ), unterminated subpattern at position 0"
    )
    assert error["message"].splitlines()[1] == (
        "demo-set/broken.yaml:9: field 'expectation.output.stdout': " + problems[1]["message"]
    )


async def test_an_upload_must_name_its_set_and_id(api: httpx.AsyncClient) -> None:
    """Without ?path= the document says its set and id, else 422 says how."""
    data = {k: v for k, v in challenge("x").items() if k not in ("set", "id")}
    answer = await api.post("/v1/challenges", content=yaml.safe_dump(data), headers=YAML)
    assert answer.status_code == 422
    assert answer.json()["error"]["problems"] == [
        {
            "file": "upload.yaml",
            "line": "1",
            "field": "set",
            "message": "an upload names its set and id: add set:, id: or send "
            "?path=<set>/<file>.yaml",
        }
    ]


async def test_yaml_aliases_are_refused(api: httpx.AsyncClient) -> None:
    """Anchors and aliases (a small body that expands without bound) are refused at their line."""
    text = yaml.safe_dump(challenge(fresh_set())) + "hint: &a x\nexplanation: *a\n"
    answer = await api.post("/v1/challenges", content=text, headers=YAML)
    assert answer.status_code == 422
    problem = answer.json()["error"]["problems"][0]
    assert problem["message"].startswith("YAML aliases (*name) are not accepted")
    assert problem["line"] == str(len(text.splitlines()))


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        (SUBMITTER, 403, "forbidden"),
        ({**INSTRUCTOR, "Content-Type": "text/html"}, 415, "rejected"),
        (INSTRUCTOR, 415, "rejected"),
    ],
)
async def test_uploads_need_an_instructor_and_a_readable_type(
    api: httpx.AsyncClient, headers: dict[str, str], status: int, code: str
) -> None:
    """Submitters may not upload (403); a body that is not YAML or JSON is 415."""
    answer = await api.post(
        "/v1/challenges", content=yaml.safe_dump(challenge(fresh_set())), headers=headers
    )
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


async def test_put_refuses_a_body_of_another_challenge(api: httpx.AsyncClient) -> None:
    """The URL and the body name the same challenge, or 422."""
    set_name = fresh_set()
    answer = await api.put(
        f"/v1/challenges/{set_name}/other",
        content=yaml.safe_dump(challenge(set_name)),
        headers=YAML,
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == (
        f"the body is challenge '{set_name}/hello', the URL names '{set_name}/other'"
    )


async def test_regrade_needs_a_published_revision_and_a_known_environment(
    api: httpx.AsyncClient,
) -> None:
    """409 while nothing is published; 422 for an unknown environment; 202 with a job."""
    set_name = fresh_set()
    await api.post("/v1/challenges", content=yaml.safe_dump(challenge(set_name)), headers=YAML)
    unpublished = await api.post(f"/v1/challenges/{set_name}/hello/regrade", headers=INSTRUCTOR)
    assert unpublished.status_code == 409
    bundled = "/v1/challenges/async-test-mastery/q1-async-test-output"
    unknown = await api.post(
        f"{bundled}/regrade", json={"environment": "nowhere"}, headers=INSTRUCTOR
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["message"].startswith("unknown environment 'nowhere'")
    started = await api.post(f"{bundled}/regrade", params={"dry_run": "true"}, headers=INSTRUCTOR)
    assert started.status_code == 202
    job = started.json()
    assert (job["status"], job["dry_run"], job["challenge_id"]) == (
        "running",
        True,
        "async-test-mastery/q1-async-test-output",
    )
    polled = await api.get(f"{bundled}/regrades/{job['id']}", headers=INSTRUCTOR)
    assert polled.json() == job
    elsewhere = await api.get(
        f"/v1/challenges/{set_name}/hello/regrades/{job['id']}", headers=INSTRUCTOR
    )
    assert elsewhere.status_code == 404


async def test_retire_and_reports_of_unknown_challenges_are_404(api: httpx.AsyncClient) -> None:
    """No such challenge or revision: 404 with our error body."""
    missing = fresh_set()
    for method, path in [
        ("DELETE", f"/v1/challenges/{missing}/x"),
        ("GET", f"/v1/challenges/{missing}/x/validation"),
        ("GET", f"/v1/challenges/{missing}/x/matrix"),
        (
            "GET",
            "/v1/challenges/async-test-mastery/q5-test-isolation/validation?revision=" + "0" * 16,
        ),
    ]:
        answer = await api.request(method, path, headers=INSTRUCTOR)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["error"]["code"] == "not_found"


async def test_the_bundled_challenges_are_published_revisions(api: httpx.AsyncClient) -> None:
    """A bundled challenge's report: published, from the bundle, with no report of its own."""
    report = await api.get(
        "/v1/challenges/async-test-mastery/q5-test-isolation/validation", headers=INSTRUCTOR
    )
    body = report.json()
    assert (body["status"], body["source"], body["report"]) == ("published", "bundled", None)
    assert body["published"] == body["revision"] == body["head"]
