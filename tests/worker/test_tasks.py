"""The grading task's decisions, with a FakeSandbox and a real Redis (no Celery app, no Docker)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from grader.adapters.store import SubmissionStore
from grader.domain import CapturedStream, Limits, Observation, RunRequest, RunStatus
from grader.domain.challenge import Expectation, OutputExpectation
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import VerdictStatus
from grader.errors import HarnessProtocolError, StoreError
from grader.sandbox.testing import FakeSandbox, completed
from grader.testing import RedisServer
from tests.worker.support import (
    ENV,
    PRINTS_TWO,
    failing_infrastructure,
    printing,
    runtime_with,
    submitted,
)
from worker import timing
from worker.tasks import SANDBOX_ERROR_REASON, Retry, grade_submission


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    store = SubmissionStore.from_url(redis_server.url, 600)
    yield store
    store.close()


def test_a_passing_run_is_stored_done_with_its_packages(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A run that prints what is expected ends done/passed, with the image's packages."""
    sandbox = printing("2\n")
    submission_id = submitted(store)
    assert (
        grade_submission(runtime_with(store, sandbox, redis_server.url), submission_id, retries=0)
        is None
    )
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert stored.status is SubmissionStatus.DONE
    assert stored.verdict.status is VerdictStatus.PASSED
    assert stored.environment_packages == {"httpx": "0.27.2"}
    assert [(env, req.files) for env, req, _ in sandbox.runs] == [(ENV, {"main.py": "print(2)"})]


def test_learner_failures_are_never_retried(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """Wrong output and a time-out are verdicts at once, whatever the retry count."""
    wrong = submitted(store, "print(3)")
    assert (
        grade_submission(runtime_with(store, printing("3\n"), redis_server.url), wrong, retries=0)
        is None
    )
    stored = store.get(wrong)
    assert stored is not None and stored.verdict is not None
    assert stored.verdict.status is VerdictStatus.FAILED

    timed_out = submitted(store, "while True: pass")
    slow = FakeSandbox(
        lambda env, _: completed(env, status=RunStatus.TIME_LIMIT_EXCEEDED, timed_out=True)
    )
    assert (
        grade_submission(runtime_with(store, slow, redis_server.url), timed_out, retries=0) is None
    )
    stored = store.get(timed_out)
    assert stored is not None and stored.verdict is not None
    assert stored.status is SubmissionStatus.DONE
    assert stored.verdict.status is VerdictStatus.TIME_LIMIT_EXCEEDED
    assert len(slow.runs) == 1


def test_infrastructure_failures_back_off_then_end_in_sandbox_error(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """Each infrastructure failure asks for a retry (Celery's backoff times it); the last
    ends the submission failed with sandbox_error, never blamed on the learner."""
    sandbox = FakeSandbox(failing_infrastructure)
    current = runtime_with(store, sandbox, redis_server.url)
    current.settings.queue.max_retries = 3
    current.settings.queue.retry_backoff_max_seconds = 3
    submission_id = submitted(store)
    retries = [grade_submission(current, submission_id, retries=n) for n in range(3)]
    assert [type(r.error) for r in retries if isinstance(r, Retry)] == [HarnessProtocolError] * 3
    running = store.get(submission_id)
    assert running is not None and running.status is SubmissionStatus.RUNNING
    assert grade_submission(current, submission_id, retries=3) is None
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert stored.status is SubmissionStatus.FAILED
    assert stored.verdict.status is VerdictStatus.SANDBOX_ERROR
    assert stored.verdict.reason == SANDBOX_ERROR_REASON
    assert stored.error == "no report from the harness"
    assert stored.attempts == 4
    assert len(sandbox.runs) == 4


def test_limits_above_the_maxima_are_rejected_without_a_run(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A challenge asking for more than the server allows is rejected, not retried or run."""
    sandbox = printing("2\n")
    current = runtime_with(store, sandbox, redis_server.url)
    greedy = PRINTS_TWO.model_copy(update={"id": "greedy", "limits": {"wall_seconds": 1000}})
    current.challenges = {**current.challenges, greedy.qualified_id: greedy}
    submission_id = submitted(store, challenge_id=greedy.qualified_id)
    assert grade_submission(current, submission_id, retries=0) is None
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert stored.verdict.status is VerdictStatus.REJECTED
    assert "wall_seconds" in stored.verdict.reason
    assert sandbox.runs == []


def test_a_graded_submission_redelivered_is_left_alone(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A redelivery after the result was stored runs nothing and changes nothing."""
    sandbox = printing("2\n")
    current = runtime_with(store, sandbox, redis_server.url)
    submission_id = submitted(store)
    grade_submission(current, submission_id, retries=0)
    first = store.get(submission_id)
    assert grade_submission(current, submission_id, retries=0) is None
    assert store.get(submission_id) == first
    assert len(sandbox.runs) == 1


def test_a_duplicate_delivered_while_the_first_runs_never_overwrites_its_verdict(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A second task for one submission (its send was repeated) picked up while the first
    attempt runs: the first verdict stored stays, stored and counted once; the other
    attempt's result, even a different one, is dropped."""
    outputs = iter(["wrong\n", "2\n"])  # the first attempt's, then the duplicate's
    duplicate: list[Retry | None] = []

    def run_with_a_duplicate_inside(environment: str, _: RunRequest) -> Observation:
        text = next(outputs)
        if text == "wrong\n":  # the duplicate is delivered and graded while this one runs
            duplicate.append(grade_submission(current, submission_id, retries=0))
        return completed(environment, stdout=CapturedStream(text=text, bytes=len(text)))

    sandbox = FakeSandbox(run_with_a_duplicate_inside)
    current = runtime_with(store, sandbox, redis_server.url)
    submission_id = submitted(store)
    before, _ = store.stats()
    assert grade_submission(current, submission_id, retries=0) is None
    assert duplicate == [None]
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert (stored.status, stored.verdict.status) == (SubmissionStatus.DONE, VerdictStatus.PASSED)
    assert stored.attempts == 2
    after, _ = store.stats()
    assert after["verdict:passed"] - before.get("verdict:passed", 0) == 1
    assert after.get("verdict:failed", 0) == before.get("verdict:failed", 0)
    assert len(sandbox.runs) == 2
    assert grade_submission(current, submission_id, retries=0) is None  # a third, after it
    assert (store.get(submission_id), len(sandbox.runs)) == (stored, 2)


def test_an_unknown_challenge_is_rejected(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A submission whose challenge the worker does not know ends rejected, with no run."""
    sandbox = printing("2\n")
    submission_id = submitted(store, challenge_id="s/gone")
    assert (
        grade_submission(runtime_with(store, sandbox, redis_server.url), submission_id, retries=0)
        is None
    )
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert stored.verdict.status is VerdictStatus.REJECTED
    assert stored.verdict.reason == "unknown challenge 's/gone'"
    assert sandbox.runs == []


def test_default_limits_reach_the_sandbox(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """The run gets the server's default limits when the challenge overrides none."""
    sandbox = printing("2\n")
    current = runtime_with(store, sandbox, redis_server.url, defaults={"wall_seconds": 3})
    grade_submission(current, submitted(store), retries=0)
    assert [limits for _, _, limits in sandbox.runs] == [Limits(wall_seconds=3)]


# The loader refuses an invalid regex; this one is built past it, as if it had slipped through.
BAD_REGEX = PRINTS_TWO.model_copy(
    update={
        "id": "bad-regex",
        "expectation": Expectation.model_construct(
            output=OutputExpectation.model_construct(match="regex", stdout="(2")
        ),
    }
)


def test_an_invalid_regex_in_a_challenge_ends_failed_at_once(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A regex the comparison cannot compile ends the submission with a sandbox_error verdict
    that says why, at the first attempt and without a retry."""
    sandbox = printing("2\n")
    current = runtime_with(store, sandbox, redis_server.url)
    current.challenges = {**current.challenges, BAD_REGEX.qualified_id: BAD_REGEX}
    submission_id = submitted(store, challenge_id=BAD_REGEX.qualified_id)
    assert grade_submission(current, submission_id, retries=0) is None
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert stored.status is SubmissionStatus.FAILED
    assert stored.verdict.status is VerdictStatus.SANDBOX_ERROR
    assert stored.verdict.reason == (
        "the challenge's expectation has an invalid regex: "
        "missing ), unterminated subpattern at position 0"
    )
    assert stored.error == stored.verdict.reason
    assert stored.attempts == 1
    assert len(sandbox.runs) == 1


def test_a_bug_while_grading_ends_failed_never_retried(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """An exception outside our error tree (a bug) ends the submission failed with its type
    and message, even when retries are left."""

    def buggy(_: str, __: RunRequest) -> Observation:
        raise KeyError("stdout")

    sandbox = FakeSandbox(buggy)
    submission_id = submitted(store)
    assert (
        grade_submission(runtime_with(store, sandbox, redis_server.url), submission_id, retries=0)
        is None
    )
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert (stored.status, stored.verdict.status) == (
        SubmissionStatus.FAILED,
        VerdictStatus.SANDBOX_ERROR,
    )
    assert stored.verdict.reason == SANDBOX_ERROR_REASON
    assert stored.error == "KeyError: 'stdout'"
    assert len(sandbox.runs) == 1


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start (AOF on)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop(graceful=False)


def test_a_result_is_stored_through_a_redis_restart(own_redis: RedisServer) -> None:
    """Redis SIGKILLed during the run and back a moment later: the result is stored once."""

    def run_while_redis_dies(env: str, _: RunRequest) -> Observation:
        own_redis.stop(graceful=False)
        threading.Timer(1.5, own_redis.start).start()
        return completed(env, stdout=CapturedStream(text="2\n", bytes=2))

    store = SubmissionStore.from_url(own_redis.url, 600)
    submission_id = submitted(store)
    current = runtime_with(store, FakeSandbox(run_while_redis_dies), own_redis.url)
    assert grade_submission(current, submission_id, retries=0) is None
    stored = store.get(submission_id)
    assert stored is not None and stored.verdict is not None
    assert (stored.status, stored.verdict.status) == (SubmissionStatus.DONE, VerdictStatus.PASSED)
    assert stored.attempts == 1
    assert store.stats()[0]["verdict:passed"] == 1
    store.close()


def test_a_result_that_cannot_be_stored_in_time_has_the_task_retried(
    own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down for longer than the finishing budget: a Retry with the store's error, and
    the submission left running for the retry (or a sweeper) to finish; so is a task that
    cannot even mark its submission running."""
    monkeypatch.setattr(timing, "FINISH_SECONDS", 1.0)

    def run_while_redis_dies(env: str, _: RunRequest) -> Observation:
        own_redis.stop(graceful=False)
        return completed(env, stdout=CapturedStream(text="2\n", bytes=2))

    store = SubmissionStore.from_url(own_redis.url, 600)
    submission_id = submitted(store)
    current = runtime_with(store, FakeSandbox(run_while_redis_dies), own_redis.url)
    retry = grade_submission(current, submission_id, retries=0)
    assert isinstance(retry, Retry) and isinstance(retry.error, StoreError)
    assert str(retry.error).startswith(f"cannot record the result of {submission_id}")
    not_started = grade_submission(current, submission_id, retries=1)
    assert isinstance(not_started, Retry) and isinstance(not_started.error, StoreError)
    assert str(not_started.error).startswith(f"cannot update submission {submission_id}")
    own_redis.start()
    stored = store.get(submission_id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (SubmissionStatus.RUNNING, 1)
    store.close()


def test_the_soft_time_limit_striking_while_storing_is_one_more_try(
    store: SubmissionStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery's soft limit is set for grading; if it strikes while the result is being stored,
    storing goes on, and the result is stored and counted once."""
    current = runtime_with(store, printing("2\n"), redis_server.url)
    complete = store.complete
    calls: list[str] = []

    def interrupted_once(*args: Any, **kwargs: Any) -> tuple[Submission, bool]:
        calls.append("complete")
        if len(calls) == 1:
            raise SoftTimeLimitExceeded
        return complete(*args, **kwargs)

    monkeypatch.setattr(store, "complete", interrupted_once)
    submission_id = submitted(store)
    assert grade_submission(current, submission_id, retries=0) is None
    stored = store.get(submission_id)
    assert stored is not None and stored.status is SubmissionStatus.DONE
    assert calls == ["complete", "complete"]
