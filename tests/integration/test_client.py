"""The Python client and the CLI verbs on the real path: a uvicorn process serving the API,
the session's redis-server, a real Celery worker process and Docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from grader.adapters.redis_keys import RATE
from grader.client import ApiError, AsyncClient, Client, RetryPolicy, Unreachable
from grader.domain.submission import SubmissionStatus
from grader.domain.verdict import VerdictStatus
from grader.testing import (
    OTHER_KEY,
    ROOT,
    SUBMITTER_KEY,
    ApiProcess,
    RedisServer,
    WorkerProcess,
    free_port,
)
from tests.conftest import OLD_ENV
from tests.integration.test_api_e2e import seed

pytestmark = pytest.mark.docker

Q4 = "async-test-mastery/q4-counter-after-test"
Q5 = "async-test-mastery/q5-test-isolation"
WRONG_Q4 = seed("q4-counter-after-test")["code"].replace(
    '        await client.post("/increment")\n', "", 1
)


@pytest.fixture(scope="module")
def api_url(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API as the service runs it, on a free port, on the session's Redis."""
    api = ApiProcess(redis_server.url, tmp_path_factory.mktemp("uvicorn") / "api.log")
    api.start()
    yield api.url
    api.stop()


def test_submit_and_wait_returns_the_graded_verdict(
    api_url: str, worker_process: WorkerProcess
) -> None:
    """Client.submit(wait=True) with the seed's Q4 code: done, passed, in the old environment,
    with the observation and the image's packages typed."""
    with Client(api_url, SUBMITTER_KEY) as grader:
        submission = grader.submit(Q4, seed("q4-counter-after-test")["code"], wait=True)
    assert submission.status is SubmissionStatus.DONE
    assert submission.result is not None
    assert submission.result.status is VerdictStatus.PASSED, submission.result.reason
    assert submission.result.environment.name == OLD_ENV
    assert submission.result.environment.packages["httpx"] == "0.27.2"
    assert submission.result.observation is not None
    assert submission.result.observation.environment.image_id.startswith("sha256:")


def test_a_wrong_answer_fails_with_its_reason_and_formats_follow(
    api_url: str, worker_process: WorkerProcess
) -> None:
    """A wrong Q4 ends failed with the comparison's reason; its Exercism document says so."""
    with Client(api_url, SUBMITTER_KEY) as grader:
        submission = grader.submit(Q4, WRONG_Q4, wait=True)
        document = grader.result(submission.id, format="exercism-v3")
    assert submission.result is not None
    assert submission.result.status is VerdictStatus.FAILED
    assert submission.result.reason == "counter is 2: not the expected value"
    assert (document["version"], document["status"]) == (3, "fail")


def test_the_same_idempotency_key_gets_the_first_submission(
    api_url: str, worker_process: WorkerProcess
) -> None:
    """Two submits with one Idempotency-Key: one submission; without one, two."""
    key = f"client-test-{time.time_ns()}"
    with Client(api_url, SUBMITTER_KEY) as grader:
        first = grader.submit(Q5, choice="B", idempotency_key=key)
        again = grader.submit(Q5, choice="A", idempotency_key=key)
        other = grader.submit(Q5, choice="B")
    assert again.id == first.id and again.choice == "B"
    assert other.id != first.id
    assert first.result is not None and first.result.status is VerdictStatus.PASSED


def test_errors_come_back_typed(api_url: str) -> None:
    """An unknown challenge is a 404 ApiError, a wrong key a 401, a dead port Unreachable."""
    with Client(api_url, SUBMITTER_KEY) as grader, pytest.raises(ApiError) as missing:
        grader.submit("no-such/challenge", "x = 1")
    with Client(api_url, "grd_wrong") as grader, pytest.raises(ApiError) as unknown:
        grader.environments()
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert (unknown.value.status, unknown.value.code) == (401, "unauthorized")
    dead = f"http://127.0.0.1:{free_port()}"
    grader = Client(dead, SUBMITTER_KEY, retry=RetryPolicy(attempts=2, backoff_max=0.1))
    with grader, pytest.raises(Unreachable):
        grader.get("x")


@pytest.fixture
def other_key_window(redis_server: RedisServer) -> Iterator[None]:
    """The 'other' key's rate window, empty before and after (other tests count on it)."""
    client = redis.Redis.from_url(redis_server.url)

    def clear() -> None:
        for name in client.scan_iter(match=f"{RATE}*/other/*"):
            client.delete(name)

    clear()
    yield
    clear()
    client.close()


@pytest.mark.usefixtures("other_key_window")
def test_a_rate_limited_key_reads_its_retry_after(api_url: str) -> None:
    """Past the 'other' key's 3 per minute, the 429 carries a Retry-After of at most 60 s; a
    policy that will not wait that long raises it."""
    policy = RetryPolicy(retry_after_max=0)
    accepted = 0
    with Client(api_url, OTHER_KEY, retry=policy) as grader, pytest.raises(ApiError) as limited:
        for _ in range(4):
            grader.submit(Q5, choice="B")
            accepted += 1
    assert accepted == 3
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert limited.value.retry_after is not None and 1 <= limited.value.retry_after <= 60


@pytest.mark.asyncio
async def test_the_async_client_on_the_real_path(
    api_url: str, worker_process: WorkerProcess
) -> None:
    """AsyncClient: the catalog, then a code submission waited for until its verdict."""
    async with AsyncClient(api_url, SUBMITTER_KEY) as grader:
        challenges = await grader.challenges(set="async-test-mastery")
        environments = await grader.environments()
        submission = await grader.submit(Q4, seed("q4-counter-after-test")["code"], wait=True)
    assert Q4 in {c.id for c in challenges}
    assert OLD_ENV in {e.name for e in environments}
    assert submission.result is not None and submission.result.status is VerdictStatus.PASSED


def grader_cli(*args: str, url: str, key: str = SUBMITTER_KEY) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRADER_URL": url, "GRADER_API_KEY": key}
    command = [sys.executable, "-m", "grader", *args]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def test_cli_submit_and_result_exit_with_the_verdict(
    api_url: str, worker_process: WorkerProcess, tmp_path: Path
) -> None:
    """`grader submit FILE --challenge ID --wait` exits 0 for the right code and 1 for the
    wrong one; `grader result ID --format gradescope` prints that document, exit 1."""
    right, wrong = tmp_path / "right.py", tmp_path / "wrong.py"
    right.write_text(seed("q4-counter-after-test")["code"])
    wrong.write_text(WRONG_Q4)
    passed = grader_cli("submit", str(right), "--challenge", Q4, "--wait", url=api_url)
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["result"]["status"] == "passed"
    failed = grader_cli("submit", str(wrong), "--challenge", Q4, "--wait", url=api_url)
    assert failed.returncode == 1, failed.stderr
    assert "failed: counter is 2: not the expected value" in failed.stderr
    submission_id = json.loads(failed.stdout)["id"]
    document = grader_cli("result", submission_id, "--format", "gradescope", url=api_url)
    assert document.returncode == 1, document.stderr
    assert json.loads(document.stdout)["score"] == 0.0


def test_cli_exit_codes_for_errors_and_no_answer(api_url: str, tmp_path: Path) -> None:
    """A refused request exits 2; no API at the URL exits 3."""
    code = tmp_path / "code.py"
    code.write_text("x = 1\n")
    refused = grader_cli("submit", str(code), "--challenge", "no-such/one", url=api_url)
    assert refused.returncode == 2
    assert "not_found: HTTP 404: no challenge 'no-such/one'" in refused.stderr
    unknown = grader_cli("result", "nope", url=api_url)
    assert unknown.returncode == 2
    dead = grader_cli("result", "nope", url=f"http://127.0.0.1:{free_port()}")
    assert dead.returncode == 3
    assert dead.stderr.startswith("unreachable: no answer from")


def test_the_client_runs_code_without_a_challenge(
    api_url: str, worker_process: WorkerProcess
) -> None:
    """Client.run on the real POST /v1/runs: stdin reaches the program, the observation
    comes back typed."""
    with Client(api_url, SUBMITTER_KEY) as grader:
        record = grader.run(
            OLD_ENV, "import sys\nprint(sys.stdin.read().upper())\n", stdin="hello run\n"
        )
        again = grader.get_run(record.id)
    assert record.final
    assert record.status == "done"
    assert record.observation is not None
    assert record.observation.stdout.text == "HELLO RUN\n\n"
    assert record.observation.exit_code == 0
    assert again.id == record.id
    assert again.observation == record.observation


def test_cli_run_exits_with_how_the_program_ended(
    api_url: str, worker_process: WorkerProcess, tmp_path: Path
) -> None:
    script, feed = tmp_path / "main.py", tmp_path / "in.txt"
    feed.write_text("3 4\n")
    script.write_text("a, b = map(int, input().split())\nprint(a * b)\n")
    ran = grader_cli("run", str(script), "--env", OLD_ENV, "--stdin", str(feed), url=api_url)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["observation"]["stdout"]["text"] == "12\n"
    script.write_text("raise ValueError('no')\n")
    crashed = grader_cli("run", str(script), "--env", OLD_ENV, url=api_url)
    assert crashed.returncode == 1, crashed.stderr
    assert json.loads(crashed.stdout)["observation"]["exception"]["type"] == "ValueError"


SEVERAL = "io-basics/q4-statistics-several-files"
STATS = """\
def stats(numbers):
    return {"min": min(numbers), "max": max(numbers), "mean": sum(numbers) / len(numbers)}
"""
MAIN = """\
import sys
from stats import stats

print(stats([int(word) for word in sys.stdin.read().split()]))
"""


def test_the_client_submits_several_files_to_an_io_challenge(
    api_url: str, worker_process: WorkerProcess
) -> None:
    """Several files through the client: main.py imports stats.py; every stdin case passes."""
    with Client(api_url, SUBMITTER_KEY) as grader:
        submission = grader.submit(SEVERAL, files={"main.py": MAIN, "stats.py": STATS}, wait=True)
    assert submission.result is not None
    assert submission.result.status is VerdictStatus.PASSED, submission.result.reason
    assert [t.status for t in submission.result.tests] == ["passed"] * 3


def test_cli_submit_sends_several_files(
    api_url: str, worker_process: WorkerProcess, tmp_path: Path
) -> None:
    main, helper = tmp_path / "main.py", tmp_path / "stats.py"
    main.write_text(MAIN)
    helper.write_text(STATS.replace("min(numbers)", "max(numbers)"))  # a wrong minimum
    done = grader_cli(
        "submit", str(main), "--file", str(helper), "--challenge", SEVERAL, "--wait", url=api_url
    )
    assert done.returncode == 1, done.stderr
    tests = json.loads(done.stdout)["result"]["tests"]
    assert [t["status"] for t in tests] == ["failed", "passed", "failed"]
