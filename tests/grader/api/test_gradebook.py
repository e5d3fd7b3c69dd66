"""The gradebook on a real Redis: who sees what, filters, cursor pages, CSV and JSON Lines
exports, per-challenge statistics. Choices are graded in the API, so no worker is needed."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import httpx
import pytest

from grader.domain.gradebook import COLUMNS
from grader.testing import ADMIN_KEY, INSTRUCTOR_KEY, SUBMITTER_KEY

pytestmark = pytest.mark.asyncio

SUBMITTER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
TEACHER = {"Authorization": f"Bearer {INSTRUCTOR_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
Q4 = "async-test-mastery/q4-counter-after-test"
Q5 = "async-test-mastery/q5-test-isolation"


async def choose(
    api: httpx.AsyncClient, headers: dict[str, str], who: str, challenge: str, choice: str
) -> dict[str, Any]:
    body = {"challenge_id": challenge, "learner_id": who, "choice": choice}
    response = await api.post("/v1/submissions", json=body, headers=headers)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def listed(
    api: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await api.get("/v1/submissions", params=params, headers=headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["submissions"]
    return rows


async def test_admin_sees_every_key_and_others_only_their_own(api: httpx.AsyncClient) -> None:
    """One learner id under two keys: admin lists both answers, each key its own one (the
    'other' key is left to the rate-limit test: it allows 3 requests a minute)."""
    who = f"l-{uuid.uuid4().hex[:8]}"
    mine = await choose(api, SUBMITTER, who, Q5, "B")
    teachers = await choose(api, TEACHER, who, Q5, "A")
    everyone = await listed(api, ADMIN, learner_id=who)
    assert [r["id"] for r in everyone] == [mine["id"], teachers["id"]]
    assert [r["key_id"] for r in everyone] == ["platform", "teacher"]
    assert [r["id"] for r in await listed(api, SUBMITTER, learner_id=who)] == [mine["id"]]
    assert [r["id"] for r in await listed(api, TEACHER, learner_id=who)] == [teachers["id"]]


async def test_filters_select_by_set_challenge_status_and_time(api: httpx.AsyncClient) -> None:
    """Each filter narrows the same learner's three answers to the ones it names."""
    who = f"l-{uuid.uuid4().hex[:8]}"
    wrong = await choose(api, SUBMITTER, who, Q5, "A")
    right = await choose(api, SUBMITTER, who, Q5, "B")
    q4 = await choose(api, SUBMITTER, who, Q4, "C")

    async def ids(**params: Any) -> list[str]:
        return [r["id"] for r in await listed(api, SUBMITTER, learner_id=who, **params)]

    assert await ids(challenge=Q5) == [wrong["id"], right["id"]]
    assert await ids(set="async-test-mastery", challenge="q4-counter-after-test") == [q4["id"]]
    assert await ids(status="failed") == [wrong["id"]]
    assert await ids(status="passed") == [right["id"], q4["id"]]
    assert await ids(set="pytest-outcomes") == []
    assert await ids(since=q4["created_at"]) == [q4["id"]]


async def test_cursor_pages_walk_every_row_once(api: httpx.AsyncClient) -> None:
    """Pages of one row, followed by their cursors, give the rows of one big page in order."""
    who = f"l-{uuid.uuid4().hex[:8]}"
    for challenge in (Q4, Q5):
        for choice in ("A", "B"):
            await choose(api, SUBMITTER, who, challenge, choice)
    whole = [r["id"] for r in await listed(api, SUBMITTER, learner_id=who)]
    walked: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"learner_id": who, "limit": 1}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await api.get("/v1/submissions", params=params, headers=SUBMITTER)).json()
        walked += [r["id"] for r in page["submissions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(whole) == 4
    assert walked == whole


async def test_a_cursor_we_did_not_give_is_422(api: httpx.AsyncClient) -> None:
    """A forged cursor is a precise 422, not a 500."""
    response = await api.get("/v1/submissions", params={"cursor": "!!!"}, headers=SUBMITTER)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"


async def test_csv_and_json_lines_export_the_same_rows(api: httpx.AsyncClient) -> None:
    """Both exports hold the query's rows in order; a learner id shaped like a spreadsheet
    formula is written as text."""
    who = f"=cmd|{uuid.uuid4().hex[:8]}"
    first = await choose(api, SUBMITTER, who, Q5, "A")
    second = await choose(api, SUBMITTER, who, Q5, "B")
    exported = await api.get(
        "/v1/gradebook/export", params={"learner_id": who, "format": "csv"}, headers=SUBMITTER
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert tuple(rows[0]) == COLUMNS
    assert [r["id"] for r in rows] == [first["id"], second["id"]]
    assert {r["learner_id"] for r in rows} == {f"'{who}"}
    assert [(r["result"], r["attempt"], r["attempts_left"]) for r in rows] == [
        ("failed", "1", "1"),
        ("passed", "2", "0"),
    ]
    lines = await api.get(
        "/v1/gradebook/export", params={"learner_id": who, "format": "jsonl"}, headers=SUBMITTER
    )
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in lines.text.splitlines()]
    assert [r["id"] for r in records] == [first["id"], second["id"]]
    assert records[0]["learner_id"] == who


async def test_statistics_per_challenge(api: httpx.AsyncClient) -> None:
    """Two learners on Q5: one passes at the first attempt, one at the second; Q4 one wrong."""
    tag = uuid.uuid4().hex[:8]
    await choose(api, TEACHER, f"a-{tag}", Q5, "B")
    await choose(api, TEACHER, f"b-{tag}", Q5, "A")
    await choose(api, TEACHER, f"b-{tag}", Q5, "B")
    await choose(api, TEACHER, f"b-{tag}", Q4, "A")
    first = (await listed(api, TEACHER, learner_id=f"a-{tag}"))[0]
    response = await api.get(
        "/v1/gradebook/stats", params={"since": first["created_at"]}, headers=TEACHER
    )
    stats = {c["challenge_id"]: c for c in response.json()["challenges"]}
    assert stats[Q5] == {
        "challenge_id": Q5,
        "submissions": 3,
        "graded": 3,
        "passed": 2,
        "pass_rate": 0.6667,
        "learners": 2,
        "learners_passed": 2,
        "attempts_to_pass": {"mean": 1.5, "counts": {"1": 1, "2": 1}},
        "exceptions": [],
    }
    assert (stats[Q4]["passed"], stats[Q4]["pass_rate"]) == (0, 0.0)
    assert response.json()["truncated"] is False
