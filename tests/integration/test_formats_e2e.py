"""End to end: a tests challenge graded by a real worker in real Docker, read in every format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from grader.domain.hidden import hidden_test_names
from grader.testing import ADMIN_KEY, SUBMITTER_KEY, WorkerProcess

pytestmark = [pytest.mark.docker, pytest.mark.asyncio]

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
WHOLE = {"Authorization": f"Bearer {ADMIN_KEY}"}
"""Documents are read whole, by an admin: a submitter's keep expected values out while the
challenge's attempts remain (tests/integration/test_quiz_e2e.py)."""
CHALLENGE = "fastapi-async-testing/q5-write-the-items-endpoints"
FILE = Path(__file__).resolve().parents[2] / "challenges" / f"{CHALLENGE}.yaml"
NO_404 = """
    if item_id not in items:
        raise HTTPException(status_code=404, detail="Item not found")
"""
BROKEN = "test_unknown_item_is_404"


async def graded(api: httpx.AsyncClient, code: str) -> str:
    created = await api.post(
        "/v1/submissions", json={"challenge_id": CHALLENGE, "code": code}, headers=AUTH
    )
    assert created.status_code == 202, created.text
    submission_id = str(created.json()["id"])
    for _ in range(6):  # up to 6 long-polls of 30 s
        response = await api.get(
            f"/v1/submissions/{submission_id}", params={"wait": 30}, headers=AUTH
        )
        if response.json()["status"] in ("done", "failed"):
            assert response.json()["result"]["status"] == "failed", response.json()
            return submission_id
    raise AssertionError(f"submission {submission_id} never finished")


async def test_a_partly_failing_tests_submission_in_every_format(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Without its 404, the items API fails one hidden test: each format says so, in order."""
    challenge: dict[str, Any] = yaml.safe_load(FILE.read_text())
    tests = challenge["expectation"]["tests"]
    assert NO_404 in challenge["code"]
    submission_id = await graded(api, challenge["code"].replace(NO_404, "\n"))
    names = hidden_test_names(tests["code"])
    points = {name: float(tests["points"].get(name, 1)) for name in names}
    earned = {name: 0.0 if name == BROKEN else points[name] for name in names}
    path = f"/v1/submissions/{submission_id}"

    exercism = (await api.get(path, params={"format": "exercism-v3"}, headers=WHOLE)).json()
    assert (exercism["version"], exercism["status"], exercism["message"]) == (3, "fail", None)
    assert [(t["name"], t["status"]) for t in exercism["tests"]] == [
        (name, "fail" if name == BROKEN else "pass") for name in names
    ]
    (failing,) = [t for t in exercism["tests"] if t["status"] == "fail"]
    assert "999999" in tests["code"]  # the unknown id the hidden test reads
    assert failing["message"] == "KeyError: 999999"  # what the ASGI transport re-raises
    assert all("test_code" not in t and "task_id" not in t for t in exercism["tests"])

    gradescope = (await api.get(path, params={"format": "gradescope"}, headers=WHOLE)).json()
    assert gradescope["score"] == sum(earned.values())
    assert [(t["name"], t["score"], t["max_score"], t["status"]) for t in gradescope["tests"]] == [
        (name, earned[name], points[name], "failed" if name == BROKEN else "passed")
        for name in names
    ]

    prairielearn = (await api.get(path, params={"format": "prairielearn"}, headers=WHOLE)).json()
    assert prairielearn["gradable"] is True
    assert prairielearn["score"] == sum(earned.values()) / sum(points.values())
    assert [(t["name"], t["points"], t["max_points"]) for t in prairielearn["tests"]] == [
        (name, earned[name], points[name]) for name in names
    ]
