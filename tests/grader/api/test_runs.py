"""``POST /v1/runs`` refusals: who may run, and every check before anything is stored.

Real Redis underneath, no worker: a refused run leaves nothing stored and nothing queued.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from grader.api.app import create_app
from grader.api.security import hash_key
from grader.settings import ApiKey
from grader.testing import (
    ADMIN_KEY,
    INSTRUCTOR_KEY,
    OTHER_KEY,
    SUBMITTER_KEY,
    RedisServer,
    service_settings,
)
from tests.grader.api.conftest import Q4_ENVIRONMENT, Ledger, client_for

pytestmark = pytest.mark.asyncio

RUNNER = {"Authorization": f"Bearer {SUBMITTER_KEY}"}  # a submitter with runs: true


def body(**changes: Any) -> dict[str, Any]:
    return {
        "environment": Q4_ENVIRONMENT,
        "files": {"main.py": "print('hi')\n"},
        "entry": "main.py",
        **changes,
    }


async def refused(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], payload: dict[str, Any]
) -> tuple[int, str, str]:
    """Post ``payload``; its status, error code and message, having checked nothing was kept."""
    before = ledger()
    response = await api.post("/v1/runs", json=payload, headers=RUNNER)
    assert ledger() == before
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


async def test_a_submitter_key_without_the_runs_flag_is_forbidden(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """403, naming what would allow it; nothing is stored."""
    before = ledger()
    response = await api.post("/v1/runs", json=body(), headers={"X-API-Key": OTHER_KEY})
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "key 'other' may not run code without a challenge: that needs the "
        "instructor role or 'runs: true' on the key",
    }
    assert ledger() == before


@pytest.mark.parametrize("key", [INSTRUCTOR_KEY, ADMIN_KEY, SUBMITTER_KEY])
async def test_instructors_admins_and_flagged_keys_may_run(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], key: str
) -> None:
    """202 with a queued run, stored and sent to its environment's queue."""
    before = ledger()
    response = await api.post("/v1/runs", json=body(), headers={"X-API-Key": key})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert ledger() == Ledger(stored=before.stored + 1, queued=before.queued + 1)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../escape.py", "has an empty, '.' or '..' part"),
        ("lib/../../x.py", "has an empty, '.' or '..' part"),
        ("./main2.py", "has an empty, '.' or '..' part"),
        ("lib//x.py", "has an empty, '.' or '..' part"),
        ("/etc/passwd", "is absolute (give a path relative to the work directory)"),
        ("C:/x.py", "is absolute (give a path relative to the work directory)"),
        ("a\x00b.py", "contains a NUL character"),
        ("lib\\..\\x.py", "contains a backslash (use '/' between folders)"),
        ("a\nb.py", "contains a control character"),
        ("", "is empty"),
        ("x" * 101, "is longer than 100 characters"),
        (".grader-run.json", "is reserved for the harness"),
    ],
)
async def test_bad_paths_are_422_naming_the_path(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], path: str, problem: str
) -> None:
    """Every path that could leave or confuse the work directory is refused by name."""
    payload = body(files={"main.py": "print(1)\n", path: "x = 1\n"})
    assert await refused(api, ledger, payload) == (
        422,
        "rejected",
        f"files: path {path!r} {problem}",
    )


async def test_an_entry_that_is_not_among_the_files_is_422(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """The entry must be one of the files sent."""
    assert await refused(api, ledger, body(entry="app.py")) == (
        422,
        "rejected",
        "entry 'app.py' is not among the files (main.py)",
    )


async def test_too_many_files_is_413(api: httpx.AsyncClient, ledger: Callable[[], Ledger]) -> None:
    """More files than GRADER_API__MAX_FILES (20 by default)."""
    files = {f"m{i}.py": "" for i in range(21)}
    assert await refused(api, ledger, body(files=files, entry="m0.py")) == (
        413,
        "too_large",
        "files: 21 files; at most 20 are allowed",
    )


async def test_files_larger_than_the_code_limit_are_413(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """Paths and texts together within GRADER_API__MAX_CODE_BYTES (64 KiB by default)."""
    files = {"main.py": "#" * 40_000, "b.py": "#" * 30_000}
    assert await refused(api, ledger, body(files=files)) == (
        413,
        "too_large",
        "files: 70011 bytes in all; at most 65536 are allowed",
    )


async def test_stdin_larger_than_its_limit_is_413(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """stdin within GRADER_API__MAX_STDIN_BYTES (64 KiB by default)."""
    assert await refused(api, ledger, body(stdin="x" * 70_000)) == (
        413,
        "too_large",
        "stdin is larger than 65536 bytes",
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"wall_seconds": 31}, "limit wall_seconds=31.0 exceeds the server maximum 30.0"),
        ({"memory_mib": 4096}, "limit memory_mib=4096 exceeds the server maximum 1024"),
        ({"wall_seconds": 0}, "limit wall_seconds: Input should be greater than 0"),
    ],
)
async def test_limits_beyond_the_server_maxima_are_422(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], limits: dict[str, float], message: str
) -> None:
    """A run may lower its limits or raise them up to the server's maxima, no further."""
    assert await refused(api, ledger, body(limits=limits)) == (422, "invalid", message)


async def test_an_unknown_limit_is_422(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """Unknown limit names are refused with the known ones listed."""
    status, code, message = await refused(api, ledger, body(limits={"disk_mib": 5}))
    assert (status, code) == (422, "invalid")
    assert message.startswith("unknown limit(s) disk_mib; known: wall_seconds, memory_mib")


async def test_an_unknown_environment_is_404(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger]
) -> None:
    """The environment must be one the server has."""
    status, code, message = await refused(api, ledger, body(environment="python-2.7"))
    assert (status, code) == (404, "not_found")
    assert message.startswith("no environment 'python-2.7'; known: fastapi-0.115-httpx-0.27")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"files": {}}, "files"),
        ({"mode": "judge"}, "mode"),
        ({"code": "print(1)"}, "code"),
        ({"stdin": 5}, "stdin"),
    ],
)
async def test_bodies_off_the_schema_are_422_naming_the_field(
    api: httpx.AsyncClient, ledger: Callable[[], Ledger], payload: dict[str, Any], field: str
) -> None:
    """No files, a harness-internal mode, unknown fields, wrong types: the field is named."""
    status, code, message = await refused(api, ledger, body(**payload))
    assert (status, code) == (422, "invalid")
    assert message.startswith(f"{field}: ")


async def test_another_keys_run_is_404(api: httpx.AsyncClient) -> None:
    """A run is visible to the key that made it (and admins), to nobody else."""
    created = await api.post("/v1/runs", json=body(), headers={"X-API-Key": INSTRUCTOR_KEY})
    run_id = created.json()["id"]
    mine = await api.get(f"/v1/runs/{run_id}", headers={"X-API-Key": INSTRUCTOR_KEY})
    theirs = await api.get(f"/v1/runs/{run_id}", headers=RUNNER)
    admin = await api.get(f"/v1/runs/{run_id}", headers={"X-API-Key": ADMIN_KEY})
    assert (mine.status_code, theirs.status_code, admin.status_code) == (200, 404, 200)
    assert theirs.json()["error"] == {"code": "not_found", "message": f"no run {run_id!r}"}


async def test_a_submission_is_not_a_run(api: httpx.AsyncClient) -> None:
    """GET /v1/runs/{id} of a submission's id is 404."""
    created = await api.post(
        "/v1/submissions",
        json={"challenge_id": "async-test-mastery/q4-counter-after-test", "choice": "B"},
        headers=RUNNER,
    )
    response = await api.get(f"/v1/runs/{created.json()['id']}", headers=RUNNER)
    assert response.status_code == 404


async def test_runs_count_against_the_keys_rate_limit(redis_server: RedisServer) -> None:
    """Like submissions: past the key's per-minute limit, 429 with Retry-After."""
    raw = "grd_test_burst_" + "b" * 28
    settings = service_settings(redis_server.url)
    burst = ApiKey(id=f"burst-{uuid.uuid4().hex[:8]}", sha256=hash_key(raw), rate_per_minute=2)
    settings.api.keys.append(burst.model_copy(update={"runs": True}))
    app = create_app(settings)
    async with client_for(app) as client:
        answers = [
            await client.post("/v1/runs", json=body(), headers={"X-API-Key": raw}) for _ in range(3)
        ]
    await app.state.grader.completions.close()
    app.state.grader.store.close()
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert int(answers[2].headers["Retry-After"]) >= 1
