"""Learners through the API on a real Redis (choices only, so no worker): opening, the
learner's view, attempts through a batch, what a wrong first answer shows, progress."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from grader.testing import INSTRUCTOR_KEY, SUBMITTER_KEY

pytestmark = pytest.mark.asyncio

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
TEACHER = {"Authorization": f"Bearer {INSTRUCTOR_KEY}"}
SET = "async-test-mastery"
Q5 = f"{SET}/q5-test-isolation"


def learner() -> str:
    return f"l-{uuid.uuid4().hex[:10]}"


async def open_q5(api: httpx.AsyncClient, who: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await api.post(
        f"/v1/challenges/{Q5}/open", json={"learner_id": who}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_opening_shows_the_learners_view_even_to_an_instructor(
    api: httpx.AsyncClient,
) -> None:
    """The opened challenge has no answer, explanation or hint, whatever the key's role."""
    opened = await open_q5(api, learner(), TEACHER)
    assert {"answer", "explanation", "hint", "expectation"} & set(opened["challenge"]) == set()
    assert opened["challenge"]["options"][1]["label"] == "B"
    assert opened["progress"]["attempts_left"] == 2


async def test_the_clock_is_per_key(api: httpx.AsyncClient) -> None:
    """The same learner_id under another key opens a clock of its own; reopening keeps one."""
    who = learner()
    first = await open_q5(api, who, SUBMITTER)
    again = await open_q5(api, who, SUBMITTER)
    elsewhere = await open_q5(api, who, TEACHER)
    assert again["progress"]["opened_at"] == first["progress"]["opened_at"]
    assert elsewhere["progress"]["opened_at"] != first["progress"]["opened_at"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (f"/v1/challenges/{SET}/nope/open", {"learner_id": "x"}, 404, "not_found"),
        (f"/v1/challenges/{Q5}/open", {}, 422, "invalid"),
        (f"/v1/challenges/{Q5}/open", {"learner_id": ""}, 422, "invalid"),
        (f"/v1/challenges/{Q5}/open", {"learner_id": "x", "extra": 1}, 422, "invalid"),
    ],
)
async def test_opening_refuses_bad_requests_precisely(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    """An unknown challenge is 404; a missing, empty or extra field is 422, as JSON."""
    response = await api.post(path, json=body, headers=SUBMITTER)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_a_batch_counts_attempts_and_shows_no_solution_early(
    api: httpx.AsyncClient,
) -> None:
    """Three items for one learner: the first (wrong) shows the hint only, the second (the
    last) the explanation and answer, the third is refused attempts_exhausted."""
    who = learner()
    items = [{"challenge_id": Q5, "learner_id": who, "choice": c} for c in ("A", "C", "B")]
    response = await api.post(
        "/v1/submissions/batch", json={"submissions": items}, headers=SUBMITTER
    )
    first, second, third = response.json()["submissions"]
    assert first["result"]["feedback"]["hint"].startswith("Think about how async tests")
    assert (first["result"]["feedback"]["explanation"], first["result"]["feedback"]["answer"]) == (
        None,
        None,
    )
    assert "Tests share the app" not in str(first)
    assert second["result"]["attempts_left"] == 0
    assert second["result"]["feedback"]["answer"].startswith("B: Tests share the app")
    assert third["error"]["code"] == "attempts_exhausted"


async def test_progress_lists_every_challenge_of_the_set(api: httpx.AsyncClient) -> None:
    """A learner who opened Q5 and answered it wrong once: open, 1 attempt left, hint shown;
    the others not opened; no badge yet; an unknown set is 404."""
    who = learner()
    await open_q5(api, who, SUBMITTER)
    await api.post(
        "/v1/submissions",
        json={"challenge_id": Q5, "learner_id": who, "choice": "A"},
        headers=SUBMITTER,
    )
    progress = (
        await api.get(f"/v1/sets/{SET}/progress", params={"learner_id": who}, headers=SUBMITTER)
    ).json()
    states = {c["challenge_id"]: c for c in progress["challenges"]}
    assert (states[Q5]["state"], states[Q5]["attempts_left"]) == ("open", 1)
    assert states[Q5]["hint"] is not None
    assert sorted(c["state"] for c in progress["challenges"]) == ["not_opened"] * 4 + ["open"]
    assert (progress["passed"], progress["total"], progress["earned"]) == (0, 5, None)
    missing = await api.get("/v1/sets/nope/progress", params={"learner_id": who}, headers=SUBMITTER)
    assert missing.status_code == 404
