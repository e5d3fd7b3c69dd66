"""``GET /v1/submissions/{id}?format=``: results as platforms read them. Real Redis underneath.

A queued submission is finished through the store, as a worker would, with the verdict of a
golden case; the API must then answer that case's golden file byte for byte.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from grader.adapters.store import SubmissionStore
from grader.domain.exporters import ResultFormat
from grader.domain.verdict import Verdict
from grader.testing import ADMIN_KEY, SUBMITTER_KEY, RedisServer

from ..domain import exporter_cases as cases
from ..domain.test_exporters import GOLDEN

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
"""Reads results whole; a submitter reads them shaped by grader.domain.feedback."""
Q4 = "async-test-mastery/q4-counter-after-test"
Q5 = "async-test-mastery/q5-test-isolation"
FORMATS = [f.value for f in ResultFormat if f is not ResultFormat.GRADER]


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    """The store a worker would finish submissions through."""
    created = SubmissionStore.from_url(redis_server.url, retention_seconds=600)
    yield created
    created.client.close()


async def queued(api: httpx.AsyncClient) -> str:
    response = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q4, "code": "print(2)\n"}
    )
    assert response.status_code == 202
    return str(response.json()["id"])


def finish(store: SubmissionStore, submission_id: str, verdict: Verdict, failed: bool) -> None:
    stored = store.get(submission_id)
    assert stored is not None
    store.finish(stored, verdict, failed=failed)


def golden(case: str, fmt: str) -> Any:
    return json.loads((GOLDEN / f"{case}.{fmt}.json").read_text(encoding="utf-8"))


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_finished_submission_answers_its_golden_document(
    api: httpx.AsyncClient, store: SubmissionStore, fmt: str
) -> None:
    """A done output submission: 200 and the platform's document alone, as the golden file
    (read whole, by an admin: a submitter's copy keeps expected values out, see below)."""
    submission_id = await queued(api)
    verdict = cases.output_failed().verdict
    assert verdict is not None
    finish(store, submission_id, verdict, failed=False)
    response = await api.get(
        f"/v1/submissions/{submission_id}", params={"format": fmt}, headers=ADMIN
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == golden("output_failed", fmt)


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_submitters_document_states_no_expected_value(
    api: httpx.AsyncClient, store: SubmissionStore, fmt: str
) -> None:
    """Q4 allows 2 attempts: a submitter's document of a wrong answer has no diff and no '3'."""
    submission_id = await queued(api)
    verdict = cases.output_failed().verdict
    assert verdict is not None
    finish(store, submission_id, verdict, failed=False)
    response = await api.get(
        f"/v1/submissions/{submission_id}", params={"format": fmt}, headers=SUBMITTER
    )
    assert response.status_code == 200
    text = response.text
    assert "expected" not in text.replace("not the expected", "")
    assert "+++ actual" not in text
    assert "-3" not in text


@pytest.mark.asyncio
async def test_the_default_format_is_the_grader_record(api: httpx.AsyncClient) -> None:
    """No format and format=grader answer the same record, with the verdict under result."""
    created = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q5, "choice": "A"}
    )
    path = f"/v1/submissions/{created.json()['id']}"
    plain = await api.get(path, headers=SUBMITTER)
    explicit = await api.get(path, params={"format": "grader"}, headers=SUBMITTER)
    assert plain.status_code == explicit.status_code == 200
    assert plain.json() == explicit.json() == created.json()
    assert plain.json()["result"]["status"] == "failed"


@pytest.mark.asyncio
async def test_a_choice_is_one_synthetic_test(api: httpx.AsyncClient) -> None:
    """A wrong choice, graded at once: one failing test named after the challenge."""
    created = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q5, "choice": "A"}
    )
    path = f"/v1/submissions/{created.json()['id']}"
    exercism = await api.get(path, params={"format": "exercism-v3"}, headers=SUBMITTER)
    prairielearn = await api.get(path, params={"format": "prairielearn"}, headers=SUBMITTER)
    assert exercism.json() == {
        "version": 3,
        "status": "fail",
        "message": None,
        "tests": [{"name": Q5, "status": "fail", "message": "A is not the answer"}],
    }
    assert prairielearn.json() == {
        "gradable": True,
        "score": 0.0,
        "message": "A is not the answer",
        "output": "",
        "tests": [
            {
                "name": Q5,
                "points": 0.0,
                "max_points": 1.0,
                "message": "A is not the answer",
                "output": "",
            }
        ],
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_unfinished_submission_is_409(api: httpx.AsyncClient, fmt: str) -> None:
    """Queued: 409 not_finished in every platform format; the grader record still answers."""
    submission_id = await queued(api)
    path = f"/v1/submissions/{submission_id}"
    response = await api.get(path, params={"format": fmt}, headers=SUBMITTER)
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "not_finished",
            "message": f"submission {submission_id!r} is queued: it has no result in {fmt} "
            "yet; retry later, or add ?wait=<seconds>",
        }
    }
    record = await api.get(path, headers=SUBMITTER)
    assert (record.status_code, record.json()["status"]) == (200, "queued")


@pytest.mark.asyncio
async def test_waiting_answers_the_document_once_finished(
    api: httpx.AsyncClient, store: SubmissionStore
) -> None:
    """format with wait: the document comes as soon as the verdict is stored."""
    submission_id = await queued(api)
    verdict = cases.output_failed().verdict
    assert verdict is not None

    async def finish_soon() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(finish, store, submission_id, verdict, False)

    finisher = asyncio.create_task(finish_soon())
    response = await api.get(
        f"/v1/submissions/{submission_id}",
        params={"format": "gradescope", "wait": 10},
        headers=ADMIN,
    )
    await finisher
    assert response.status_code == 200
    assert response.json() == golden("output_failed", "gradescope")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fmt", "status", "case"),
    [
        ("exercism-v3", 200, "sandbox_error"),
        ("gradescope", 409, "sandbox_error"),
        ("prairielearn", 200, "sandbox_error"),
    ],
)
async def test_our_failure_is_never_a_grade(
    api: httpx.AsyncClient, store: SubmissionStore, fmt: str, status: int, case: str
) -> None:
    """A failed submission: an error state where the format has one, else 409 not_graded."""
    submission_id = await queued(api)
    verdict = cases.CASES[case]().verdict
    assert verdict is not None
    finish(store, submission_id, verdict, failed=True)
    response = await api.get(
        f"/v1/submissions/{submission_id}", params={"format": fmt}, headers=SUBMITTER
    )
    assert response.status_code == status
    assert response.json() == golden(case, fmt)
    assert "score" not in response.json()


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", ["junit", "Exercism-v3", "exercism", ""])
async def test_an_unknown_format_is_422_naming_the_allowed_values(
    api: httpx.AsyncClient, fmt: str
) -> None:
    """An unknown format: 422 invalid, the message listing every allowed value."""
    created = await api.post(
        "/v1/submissions", headers=SUBMITTER, json={"challenge_id": Q5, "choice": "B"}
    )
    response = await api.get(
        f"/v1/submissions/{created.json()['id']}", params={"format": fmt}, headers=SUBMITTER
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"] == (
        "query.format: Input should be 'grader', 'exercism-v3', 'gradescope' or 'prairielearn'"
    )
    assert [p["field"] for p in error["problems"]] == ["query.format"]


@pytest.mark.asyncio
async def test_openapi_shows_the_format_as_an_enum(api: httpx.AsyncClient) -> None:
    """The schema lists the format parameter's values and the 409 answer."""
    schema = (await api.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/submissions/{submission_id}"]["get"]
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "format"]
    reference = parameter["schema"].get("$ref", "")
    enum = schema["components"]["schemas"][reference.rpartition("/")[2]]["enum"]
    assert parameter["in"] == "query" and parameter["required"] is False
    assert enum == ["grader", "exercism-v3", "gradescope", "prairielearn"]
    assert "409" in operation["responses"]
