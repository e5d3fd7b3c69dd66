"""The grading task's decisions, with a FakeSandbox and a real Redis (no Celery app, no Docker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grader.adapters.queue import TaskQueue
from grader.adapters.store import SubmissionStore, new_id
from grader.domain import CapturedStream, Limits, Observation, RunRequest, RunStatus
from grader.domain.challenge import Challenge
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import VerdictStatus
from grader.errors import HarnessProtocolError
from grader.sandbox.testing import FakeSandbox, completed
from grader.settings import SandboxSettings
from grader.testing import RedisServer, service_settings
from worker.runtime import Runtime
from worker.tasks import SANDBOX_ERROR_REASON, Retry, grade_submission

ENV = "env-a"
PRINTS_TWO = Challenge.model_validate(
    {
        "id": "prints-two",
        "set": "s",
        "title": "t",
        "prompt": "p",
        "environment": ENV,
        "kind": "output",
        "code": "print(2)",
        "expectation": {"output": {"stdout": "2\n"}},
    }
)


def printing(text: str) -> FakeSandbox:
    return FakeSandbox(
        lambda env, _: completed(env, stdout=CapturedStream(text=text, bytes=len(text))),
        packages={"httpx": "0.27.2"},
    )


def failing_infrastructure(_: str, __: RunRequest) -> Observation:
    raise HarnessProtocolError("no report from the harness")


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    store = SubmissionStore.from_url(redis_server.url, 600)
    yield store
    store.close()


def runtime_with(
    store: SubmissionStore, sandbox: FakeSandbox, redis_url: str, **sandbox_settings: object
) -> Runtime:
    settings = service_settings(redis_url)
    settings.sandbox = SandboxSettings.model_validate(sandbox_settings)
    return Runtime(
        settings, store, TaskQueue(settings), sandbox, {PRINTS_TWO.qualified_id: PRINTS_TWO}
    )


def submitted(store: SubmissionStore, code: str = "print(2)", **fields: object) -> str:
    submission = Submission.model_validate(
        {
            "id": new_id(),
            "key_id": "platform",
            "challenge_id": PRINTS_TWO.qualified_id,
            "environment": ENV,
            "code": code,
            **fields,
        }
    )
    store.create(submission)
    return submission.id


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
    """Each infrastructure failure asks for a retry with a doubling countdown; the last ends
    the submission failed with sandbox_error, never blamed on the learner."""
    sandbox = FakeSandbox(failing_infrastructure)
    current = runtime_with(store, sandbox, redis_server.url)
    current.settings.queue.max_retries = 3
    current.settings.queue.retry_backoff_max_seconds = 3
    submission_id = submitted(store)
    retries = [grade_submission(current, submission_id, retries=n) for n in range(3)]
    assert [r.countdown for r in retries if isinstance(r, Retry)] == [1, 2, 3]
    assert all(isinstance(r.error, HarnessProtocolError) for r in retries if r is not None)
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
    current.challenges[greedy.qualified_id] = greedy
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
