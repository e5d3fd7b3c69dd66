"""The grading task on a raw run: the observation is stored as its result, with no challenge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.adapters.store import SubmissionStore, new_id
from grader.domain import CapturedStream, Limits, RunMode, RunStatus
from grader.domain.runs import RUN_CHALLENGE_ID, run_record
from grader.domain.submission import RawRun, Submission, SubmissionStatus
from grader.sandbox.testing import FakeSandbox, completed
from grader.testing import RedisServer
from tests.worker.support import ENV, failing_infrastructure, queued_ids, runtime_with
from worker.sweeper import sweep
from worker.tasks import Retry, grade_submission

RUN = RawRun(
    files={"main.py": "print(input())", "lib/x.py": ""},
    entry="main.py",
    stdin="hi\n",
    limits={"wall_seconds": 2, "memory_mib": 128},
)


def queued_run(store: SubmissionStore) -> str:
    """Store a queued raw run, as ``POST /v1/runs`` does."""
    record = Submission(
        id=new_id(), key_id="platform", challenge_id=RUN_CHALLENGE_ID, environment=ENV, run=RUN
    )
    store.create(record)
    return record.id


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    store = SubmissionStore.from_url(redis_server.url, 600)
    yield store
    store.close()


def test_a_raw_run_runs_its_files_with_its_stdin_and_limits(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """The request carries the files, entry, mode and stdin; limits within the maxima apply."""
    sandbox = FakeSandbox(
        lambda env, _: completed(env, stdout=CapturedStream(text="hi\n", bytes=3)),
        packages={"httpx": "0.27.2"},
    )
    run_id = queued_run(store)
    assert (
        grade_submission(runtime_with(store, sandbox, redis_server.url), run_id, retries=0) is None
    )
    [(environment, request, limits)] = sandbox.runs
    assert environment == ENV
    assert (request.files, request.entry, request.mode, request.stdin) == (
        RUN.files,
        "main.py",
        RunMode.SCRIPT,
        "hi\n",
    )
    assert (limits.wall_seconds, limits.memory_mib) == (2.0, 128)
    assert limits.pids == Limits().pids
    stored = store.get(run_id)
    assert stored is not None and stored.status is SubmissionStatus.DONE
    record = run_record(stored)
    assert record["observation"]["stdout"]["text"] == "hi\n"
    assert record["image_packages"] == {"httpx": "0.27.2"}
    assert record["files"] == {"main.py": 14, "lib/x.py": 0}


def test_a_raw_run_over_time_is_done_with_that_observation(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """What the code does is data: a time-out is a finished run, never a retry."""
    slow = FakeSandbox(
        lambda env, _: completed(env, status=RunStatus.TIME_LIMIT_EXCEEDED, timed_out=True)
    )
    run_id = queued_run(store)
    assert grade_submission(runtime_with(store, slow, redis_server.url), run_id, retries=0) is None
    stored = store.get(run_id)
    assert stored is not None and stored.status is SubmissionStatus.DONE
    assert run_record(stored)["observation"]["status"] == "time_limit_exceeded"


def test_our_failures_are_retried_then_end_failed(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A sandbox failure is retried like a submission's, then the run ends failed."""
    broken = FakeSandbox(failing_infrastructure)
    run_id = queued_run(store)
    runtime = runtime_with(store, broken, redis_server.url)
    assert isinstance(grade_submission(runtime, run_id, retries=0), Retry)
    assert grade_submission(runtime, run_id, retries=3) is None
    stored = store.get(run_id)
    assert stored is not None and stored.status is SubmissionStatus.FAILED
    assert run_record(stored)["error"] == "no report from the harness"


def test_a_raw_run_never_sent_is_sent_by_a_sweep_and_then_run(tmp_path: Path) -> None:
    """Durable like a submission: the outbox's sweep sends it to its environment's queue.

    On a Redis of its own: a sweep acts on everything a Redis holds.
    """
    server = RedisServer(tmp_path)
    server.start()
    own = SubmissionStore.from_url(server.url, 600)
    try:
        run_id = queued_run(own)
        current = runtime_with(own, FakeSandbox(lambda env, _: completed(env)), server.url)
        later = time.time() + current.settings.queue.unsent_after_seconds + 1
        assert sweep(current, later).sent == [run_id]
        assert queued_ids(own.client) == [run_id]
        assert grade_submission(current, run_id, retries=0) is None
        stored = own.get(run_id)
        assert stored is not None and stored.status is SubmissionStatus.DONE
    finally:
        own.close()
        server.stop(graceful=False)
