"""An unexpected exception while grading ends the submission failed: never silence, never a
retry loop. Through the API, a real worker process and Docker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml

from grader.adapters.store import SubmissionStore
from grader.api.app import create_app
from grader.domain.submission import SubmissionStatus
from grader.testing import SUBMITTER_KEY, RedisServer, WorkerProcess, service_settings
from tests.conftest import OLD_ENV
from worker.tasks import SANDBOX_ERROR_REASON

pytestmark = pytest.mark.docker

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
BAD_REGEX = {
    "title": "Print hello",
    "kind": "output",
    "prompt": "Print hello.",
    "environment": OLD_ENV,
    "code": 'print("hello")',
    "expectation": {"output": {"match": "regex", "stdout": "(hello"}},
}


@pytest.fixture
def challenges_root(tmp_path: Path) -> Path:
    """A challenge set whose one challenge has a regex Python cannot compile (the loader takes
    it: regexes are only compiled when a run is compared)."""
    folder = tmp_path / "challenges" / "broken"
    folder.mkdir(parents=True)
    (folder / "bad-regex.yaml").write_text(yaml.safe_dump(BAD_REGEX))
    return folder.parent


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own: no other worker takes (and rejects) its task."""
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop(graceful=False)


@pytest_asyncio.fixture
async def api_on(own_redis: RedisServer, challenges_root: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = service_settings(own_redis.url)
    settings.api.challenges_root = challenges_root
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://grader"
    ) as client:
        yield client
    await app.state.grader.completions.close()
    app.state.grader.store.client.close()


@pytest.mark.asyncio
async def test_an_invalid_regex_in_a_challenge_ends_the_submission_failed(
    api_on: httpx.AsyncClient,
    own_redis: RedisServer,
    challenges_root: Path,
    tmp_path: Path,
    built_environments: list[str],
) -> None:
    """The comparison raises re.error: the submission ends failed with sandbox_error, a reason
    that does not blame the learner and the exception in ``error``, at its first attempt."""
    worker = WorkerProcess(
        own_redis.url,
        tmp_path / "worker.log",
        name="regex",
        pool_size=0,
        env={
            "GRADER_API__CHALLENGES_ROOT": str(challenges_root),
            "GRADER_QUEUE__ENVIRONMENTS": f'["{OLD_ENV}"]',
        },
    )
    worker.start()
    store = SubmissionStore.from_url(own_redis.url, 3600)
    try:
        created = await api_on.post(
            "/v1/submissions",
            headers=AUTH,
            json={"challenge_id": "broken/bad-regex", "code": 'print("hello")'},
        )
        assert created.status_code == 202, created.text
        submission_id = created.json()["id"]
        deadline = time.monotonic() + 90
        body = created.json()
        while body["status"] not in ("done", "failed") and time.monotonic() < deadline:
            response = await api_on.get(
                f"/v1/submissions/{submission_id}", headers=AUTH, params={"wait": 10}
            )
            body = response.json()
        assert body["status"] == "failed", worker.tail()
        assert body["result"]["status"] == "sandbox_error"
        assert body["result"]["reason"] == SANDBOX_ERROR_REASON
        assert body["error"] == "re.error: missing ), unterminated subpattern at position 0"
        assert body["attempts"] == 1
        stored = store.get(submission_id)
        assert stored is not None and stored.status is SubmissionStatus.FAILED
    finally:
        worker.stop()
        store.client.close()
