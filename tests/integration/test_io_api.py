"""io challenges and several-file submissions end to end: HTTP -> Redis -> worker -> Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from grader.testing import SUBMITTER_KEY, WorkerProcess

pytestmark = [pytest.mark.docker, pytest.mark.asyncio]

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
IO_SET = Path(__file__).resolve().parents[2] / "challenges" / "io-basics"
NAMES = [
    "q1-sum-of-two",
    "q2-word-count",
    "q3-greeting-pattern",
    "q4-statistics-several-files",
]


def reference(name: str) -> str:
    code: str = yaml.safe_load((IO_SET / f"{name}.yaml").read_text())["code"]
    return code


async def graded(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Submit with ?wait= and long-poll until final; the result."""
    created = await api.post("/v1/submissions", json=body, params={"wait": 30}, headers=AUTH)
    assert created.status_code in (200, 202), created.text
    record: dict[str, Any] = created.json()
    for _ in range(6):
        if record["status"] in ("done", "failed"):
            assert record["status"] == "done", record
            result: dict[str, Any] = record["result"]
            return result
        polled = await api.get(f"/v1/submissions/{record['id']}", params={"wait": 30}, headers=AUTH)
        record = polled.json()
    raise AssertionError(f"submission {record['id']} never finished: {record}")


@pytest.mark.parametrize("name", NAMES)
async def test_each_reference_solution_passes_every_case(
    api: httpx.AsyncClient, worker_process: WorkerProcess, name: str
) -> None:
    """The set's own code, submitted over HTTP: every case passed, full score, times kept."""
    result = await graded(api, {"challenge_id": f"io-basics/{name}", "code": reference(name)})
    assert result["status"] == "passed", result["reason"]
    assert result["score"] == 1.0
    assert [t["status"] for t in result["tests"]] == ["passed"] * 3
    assert all(t["wall_seconds"] > 0 for t in result["tests"])
    assert len(result["observation"]["cases"]) == 3


async def test_partial_credit_counts_the_points_of_the_cases_that_passed(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """A solution wrong on the empty input earns the other cases' points (3 of 5)."""
    code = (
        "import sys\ntext = sys.stdin.read()\n"
        "print(len(text.splitlines()) or 1, len(text.split()))\n"
    )
    result = await graded(api, {"challenge_id": "io-basics/q2-word-count", "code": code})
    assert result["status"] == "failed"
    assert (result["points"], result["max_points"], result["score"]) == (3.0, 5.0, 0.6)
    tests = {t["name"]: t for t in result["tests"]}
    assert {name: t["status"] for name, t in tests.items()} == {
        "one line": "passed",
        "several lines": "passed",
        "empty input": "failed",
    }
    assert tests["empty input"]["output"] == "1 0\n"
    assert tests["empty input"]["message"] == "output does not match (normalized)"
    assert "-0 0" in tests["empty input"]["diff"] and "+1 0" in tests["empty input"]["diff"]
    assert result["reason"].startswith("1 of 3 cases did not pass: empty input")


async def test_a_case_stuck_in_a_loop_costs_only_its_own_share(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """The looping case is time_limit_exceeded; the cases after it still run and pass."""
    code = "a, b = map(int, input().split())\nwhile a < 0:\n    pass\nprint(a + b)\n"
    result = await graded(api, {"challenge_id": "io-basics/q1-sum-of-two", "code": code})
    statuses = [(t["name"], t["status"]) for t in result["tests"]]
    assert statuses == [
        ("small", "passed"),
        ("negative", "time_limit_exceeded"),
        ("large", "passed"),
    ]
    assert result["points"] == 2.0
    assert result["tests"][1]["message"].startswith("time limit exceeded (its share: ")


async def test_a_right_answer_from_a_crashing_process_fails(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Matching output with a non-zero exit status is not a pass; the exception is named."""
    code = "a, b = map(int, input().split())\nprint(a + b)\nraise ValueError('late')\n"
    result = await graded(api, {"challenge_id": "io-basics/q1-sum-of-two", "code": code})
    assert result["score"] == 0.0
    assert result["tests"][0]["message"] == (
        "the output matches, but the process exited with status 1; it raised ValueError: late"
    )


async def test_every_case_starts_from_fresh_files(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """What a case writes in the work directory is gone when the next case starts."""
    code = (
        "import os\n"
        "if os.path.exists('seen'):\n    print('not fresh')\n"
        "else:\n    open('seen', 'w').close()\n"
        "    a, b = map(int, input().split())\n    print(a + b)\n"
    )
    result = await graded(api, {"challenge_id": "io-basics/q1-sum-of-two", "code": code})
    assert result["status"] == "passed", result["tests"]


async def test_several_files_where_the_challenge_allows_them(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """q4 takes main.py and stats.py: the entry imports the helper, every case passes."""
    files = {
        "main.py": "import sys\nfrom stats import summary\n"
        "print(summary([int(w) for w in sys.stdin.read().split()]))\n",
        "stats.py": "def summary(numbers):\n"
        "    return {'min': min(numbers), 'max': max(numbers),"
        " 'mean': sum(numbers) / len(numbers)}\n",
    }
    body = {"challenge_id": "io-basics/q4-statistics-several-files", "files": files}
    result = await graded(api, body)
    assert result["status"] == "passed", result["reason"]


@pytest.mark.parametrize(
    ("challenge", "files", "status", "message"),
    [
        (
            "io-basics/q4-statistics-several-files",
            {"main.py": "print(1)\n", "other.py": ""},
            422,
            "files: path 'other.py' is not allowed here; allowed: main.py, stats.py, helpers/*.py",
        ),
        (
            "io-basics/q4-statistics-several-files",
            {"stats.py": ""},
            422,
            "entry 'main.py' is not among the files (stats.py)",
        ),
        (
            "io-basics/q4-statistics-several-files",
            {"main.py": "", "helpers/../x.py": ""},
            422,
            "files: path 'helpers/../x.py' has an empty, '.' or '..' part",
        ),
        (
            "io-basics/q1-sum-of-two",
            {"main.py": "print(1)\n"},
            400,
            "io-basics/q1-sum-of-two takes one file: send 'code', not 'files'",
        ),
    ],
)
async def test_files_a_challenge_does_not_allow_are_refused(
    api: httpx.AsyncClient, challenge: str, files: dict[str, str], status: int, message: str
) -> None:
    """Paths outside the challenge's policy, a missing entry, or files where one is taken."""
    response = await api.post(
        "/v1/submissions", json={"challenge_id": challenge, "files": files}, headers=AUTH
    )
    assert response.status_code == status
    assert response.json()["error"]["message"] == message


async def test_submitters_never_see_an_io_challenges_reference_code(
    api: httpx.AsyncClient,
) -> None:
    """An io challenge's code is its solution; the catalog says it takes files where it does."""
    body = (await api.get("/v1/challenges", params={"set": "io-basics"}, headers=AUTH)).json()
    assert body["count"] == 4
    assert all("code" not in c and "expectation" not in c for c in body["challenges"])
    answerable = {c["id"]: c["answerable_by"] for c in body["challenges"]}
    assert answerable["io-basics/q4-statistics-several-files"] == ["code", "files"]
    assert answerable["io-basics/q1-sum-of-two"] == ["code"]


async def test_each_case_is_a_test_in_a_platforms_format(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Exercism v3 lists one test per case: pass for the right ones, fail for the wrong one."""
    code = "a, b = map(int, input().split())\nprint(a + b if a > 0 else 0)\n"
    created = await api.post(
        "/v1/submissions",
        json={"challenge_id": "io-basics/q1-sum-of-two", "code": code},
        params={"wait": 30},
        headers=AUTH,
    )
    submission_id = created.json()["id"]
    exported = await api.get(
        f"/v1/submissions/{submission_id}",
        params={"wait": 30, "format": "exercism-v3"},
        headers=AUTH,
    )
    document = exported.json()
    assert document["status"] == "fail"
    assert [(t["name"], t["status"]) for t in document["tests"]] == [
        ("small", "pass"),
        ("negative", "fail"),
        ("large", "pass"),
    ]
    assert document["tests"][1]["output"] == "0\n"
