"""The sweeper's decisions on a real Redis of each test's own (no Celery worker, no Docker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from grader.adapters.redis_keys import QUEUED, RUN_OUTBOX, RUNNERS, RUNNING, WEBHOOK_OUTBOX
from grader.adapters.store import SubmissionStore, new_id
from grader.constants import QUEUE_WEBHOOKS
from grader.domain.challenge import Kind
from grader.domain.feedback import Terms
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.errors import QueueError
from grader.testing import RedisServer
from tests.worker.support import ENV, PRINTS_TWO, printing, queued_ids, runtime_with, submitted
from worker import timing
from worker.runtime import Runtime
from worker.sweeper import STUCK_REASON, Sweep, sweep

GONE = "gone-host:1"
"""A worker process that never wrote a heartbeat: whatever it runs is orphaned."""


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Sweeps act on everything in a Redis, so each test has its own."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop(graceful=False)


@pytest.fixture
def current(own_redis: RedisServer) -> Iterator[Runtime]:
    store = SubmissionStore.from_url(own_redis.url, 600)
    yield runtime_with(store, printing("2\n"), own_redis.url)
    store.close()


def another(own_redis: RedisServer) -> Runtime:
    """A second worker process's runtime: its own connections to the same Redis."""
    return runtime_with(
        SubmissionStore.from_url(own_redis.url, 600), printing("2\n"), own_redis.url
    )


def running_in(
    current: Runtime, worker: str, *, attempts: int = 1, callback_url: str | None = None
) -> Submission:
    submission_id = submitted(current.store, callback_url=callback_url)
    for _ in range(attempts):
        running = current.store.mark_running(submission_id, worker=worker)
    assert running is not None
    return running


def test_a_dead_workers_submission_is_requeued_once(current: Runtime) -> None:
    """Running in a process without a heartbeat for longer than a heartbeat lives: back in
    its queue once, still at its one attempt (the next pickup counts the next)."""
    stuck = running_in(current, GONE)
    at = time.time() + timing.HEARTBEAT_TTL_SECONDS + 1
    assert sweep(current, at) == Sweep(requeued=[stuck.id])
    assert sweep(current, at) == Sweep()
    record = current.store.get(stuck.id)
    assert record is not None and (record.status, record.attempts) == (
        SubmissionStatus.QUEUED,
        1,
    )
    client = current.store.client
    assert queued_ids(client) == [stuck.id]
    assert client.hget(RUNNERS, stuck.id) is None
    assert client.zscore(QUEUED, stuck.id) == record.updated_at.timestamp()
    stats, _ = current.store.stats()
    assert (stats["sweeps"], stats["sweep_requeues"]) == (2, 1)


def test_a_live_workers_submission_waits_for_its_deadline(current: Runtime) -> None:
    """A process with a heartbeat keeps its submission until the task could not still be
    running (the hard time limit and a retry countdown); then it is re-queued."""
    current.store.beat("alive-host:1", docker=True, ttl=timing.HEARTBEAT_TTL_SECONDS)
    running = running_in(current, "alive-host:1")
    now = time.time()
    assert sweep(current, now + timing.HEARTBEAT_TTL_SECONDS + 1) == Sweep()
    assert sweep(current, now + current.budget.running_stale + 1) == Sweep(requeued=[running.id])


def test_a_queued_submission_whose_task_was_lost_is_requeued_as_an_attempt(
    current: Runtime,
) -> None:
    """Queued for longer than Celery's own redelivery and a run: queued again, and the lost
    delivery counts as an attempt."""
    submission_id = submitted(current.store)
    current.store.run_queued(submission_id)  # its task was sent, then lost
    now = time.time()
    assert sweep(current, now + 60) == Sweep()
    assert sweep(current, now + current.budget.queued_stale + 1) == Sweep(requeued=[submission_id])
    record = current.store.get(submission_id)
    assert record is not None and (record.status, record.attempts) == (
        SubmissionStatus.QUEUED,
        1,
    )
    assert queued_ids(current.store.client) == [submission_id]


def test_past_its_retry_budget_a_stuck_submission_ends_failed(current: Runtime) -> None:
    """A stuck submission that has had every attempt ends failed with sandbox_error, a
    reason that does not blame the learner, and what happened in ``error``; no run is
    queued, its webhook is."""
    current.settings.queue.max_retries = 1
    stuck = running_in(current, GONE, attempts=2, callback_url="https://platform.test/hook")
    assert stuck.started_at is not None
    assert sweep(current, time.time() + timing.HEARTBEAT_TTL_SECONDS + 1) == Sweep(
        failed=[stuck.id]
    )
    record = current.store.get(stuck.id)
    assert record is not None and record.verdict is not None
    assert record.status is SubmissionStatus.FAILED
    assert record.verdict.status is VerdictStatus.SANDBOX_ERROR
    assert record.verdict.reason == STUCK_REASON
    assert record.error == (
        f"stuck running since {stuck.started_at:%Y-%m-%dT%H:%M:%SZ} after 2 attempts"
    )
    client = current.store.client
    assert queued_ids(client) == []
    assert queued_ids(client, QUEUE_WEBHOOKS) == [stuck.id]
    assert client.zscore(WEBHOOK_OUTBOX, stuck.id) is None
    assert (client.zscore(RUNNING, stuck.id), client.hget(RUNNERS, stuck.id)) == (None, None)
    stats, _ = current.store.stats()
    assert (stats["sweep_failures"], stats["verdict:sandbox_error"]) == (1, 1)


def test_a_learners_stuck_submission_that_ends_failed_gives_the_attempt_back(
    current: Runtime,
) -> None:
    """Our failure is not the learner's: the attempt a stuck answer took is given back."""
    current.settings.queue.max_retries = 0
    submission = Submission(
        id=new_id(),
        key_id="platform",
        challenge_id=PRINTS_TWO.qualified_id,
        environment=ENV,
        code="print(2)",
        learner_id="u-1",
    )

    def terms(attempt: int, opened_at: datetime, at: datetime) -> Terms:
        return Terms(kind=Kind.OUTPUT, attempt=attempt, attempts_allowed=2, opened_at=opened_at)

    gate = current.store.sessions.gate("platform", "u-1", PRINTS_TWO.qualified_id, 2, terms)
    current.store.create(submission, gate=gate)
    current.store.mark_running(submission.id, worker=GONE)
    sessions = current.store.sessions
    assert (
        sessions.read("platform", "u-1", [PRINTS_TWO.qualified_id])[PRINTS_TWO.qualified_id].used
        == 1
    )
    assert sweep(current, time.time() + timing.HEARTBEAT_TTL_SECONDS + 1) == Sweep(
        failed=[submission.id]
    )
    assert (
        sessions.read("platform", "u-1", [PRINTS_TWO.qualified_id])[PRINTS_TWO.qualified_id].used
        == 0
    )


def test_two_sweepers_at_once_requeue_each_stuck_submission_once(
    current: Runtime, own_redis: RedisServer
) -> None:
    """Two processes sweeping the same stuck submissions at the same moment: every one is
    queued exactly once, by one of them."""
    stuck = sorted(running_in(current, GONE).id for _ in range(30))
    sweepers = [current, another(own_redis)]
    at = time.time() + timing.HEARTBEAT_TTL_SECONDS + 1
    for sweeper in sweepers:  # a re-queue's outbox entry is not due at this simulated time
        sweeper.settings.queue.unsent_after_seconds = 2 * timing.HEARTBEAT_TTL_SECONDS
    start = threading.Barrier(len(sweepers))
    results: list[Sweep] = []

    def sweep_now(runtime: Runtime) -> None:
        start.wait()
        results.append(sweep(runtime, at))

    threads = [threading.Thread(target=sweep_now, args=(r,)) for r in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sweepers[1].store.close()
    requeued = [sid for result in results for sid in result.requeued]
    assert sorted(requeued) == stuck
    assert sorted(queued_ids(current.store.client)) == stuck
    assert current.store.stats()[0]["sweep_requeues"] == len(stuck)


def test_a_sweeper_that_read_a_submission_before_another_requeued_it_does_nothing(
    current: Runtime, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race made deterministic: the other sweeper re-queues the submission between this
    one's read and its claim; this one's claim is refused and it queues nothing."""
    stuck = running_in(current, GONE)
    other = another(own_redis)
    at = time.time() + timing.HEARTBEAT_TTL_SECONDS + 1
    read = current.store.get
    others: list[Sweep] = []

    def read_then_lose_the_race(submission_id: str) -> Submission | None:
        seen = read(submission_id)
        others.append(sweep(other, at))
        return seen

    monkeypatch.setattr(current.store, "get", read_then_lose_the_race)
    assert sweep(current, at) == Sweep()
    other.store.close()
    assert others == [Sweep(requeued=[stuck.id])]
    assert queued_ids(current.store.client) == [stuck.id]


def test_a_webhook_left_in_the_outbox_is_queued_by_a_sweep(current: Runtime) -> None:
    """A result stored with its webhook by a process that died before queueing it: a sweep
    queues the webhook once the writer's own retries would be over."""
    submission_id = submitted(current.store, callback_url="https://platform.test/hook")
    record = current.store.get(submission_id)
    assert record is not None
    current.store.complete(record, Verdict(status=VerdictStatus.PASSED), webhook=True)
    now = time.time()
    assert sweep(current, now) == Sweep()
    late = now + timing.FINISH_SECONDS + timing.STALE_MARGIN_SECONDS + 1
    assert sweep(current, late) == Sweep(webhooks=[submission_id])
    assert sweep(current, late) == Sweep()
    client = current.store.client
    assert queued_ids(client, QUEUE_WEBHOOKS) == [submission_id]
    assert client.zscore(WEBHOOK_OUTBOX, submission_id) is None


def test_final_and_vanished_submissions_leave_the_index(current: Runtime) -> None:
    """A record gone (retention) or final (saved by the API) is dropped from the index."""
    client = current.store.client
    gone = submitted(current.store)
    client.delete(f"grader:sub:{gone}")
    client.zadd(RUNNING, {"never-stored": 1.0})
    final = current.store.get(submitted(current.store))
    assert final is not None
    current.store.finish(final, Verdict(status=VerdictStatus.PASSED))
    client.zadd(QUEUED, {final.id: 1.0})  # as an older writer could have left it
    assert sweep(current, time.time() + current.budget.queued_stale + 1) == Sweep()
    assert (client.zcard(QUEUED), client.zcard(RUNNING)) == (0, 0)
    assert queued_ids(client) == []


def test_an_unreadable_record_does_not_stop_a_sweep(current: Runtime) -> None:
    """A record that no longer parses is logged and skipped; the others are swept."""
    client = current.store.client
    client.set("grader:sub:garbled", b"{not json")
    client.zadd(RUNNING, {"garbled": 1.0})
    client.hset(RUNNERS, "garbled", GONE)
    stuck = running_in(current, GONE)
    at = time.time() + timing.HEARTBEAT_TTL_SECONDS + 1
    assert sweep(current, at) == Sweep(requeued=[stuck.id])
    assert queued_ids(client) == [stuck.id]


def refuse(submission_id: str, environment: str) -> None:
    raise QueueError("cannot queue grader.run_submission: Error 111 connecting to redis")


def test_a_submission_stored_but_never_sent_is_sent_after_the_short_margin(
    current: Runtime,
) -> None:
    """Stored queued, its task never sent (the API died in between): left alone within
    ``unsent_after_seconds``, then sent once, counted as a re-queue, not as an attempt."""
    submission_id = submitted(current.store)
    stored = current.store.get(submission_id)
    margin = current.settings.queue.unsent_after_seconds
    assert margin < current.budget.queued_stale
    now = time.time()
    assert sweep(current, now + margin - 1) == Sweep()
    assert queued_ids(current.store.client) == []
    assert sweep(current, now + margin + 1) == Sweep(sent=[submission_id])
    assert sweep(current, now + margin + 1) == Sweep()
    client = current.store.client
    assert queued_ids(client) == [submission_id]
    assert client.zscore(RUN_OUTBOX, submission_id) is None
    assert current.store.get(submission_id) == stored  # still queued, at no attempt
    stats, _ = current.store.stats()
    assert (stats["sweeps"], stats["sweep_requeues"]) == (3, 1)


def test_an_unsent_submission_the_broker_refuses_is_sent_by_a_later_sweep(
    current: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker is down at the sweep: nothing is sent or counted, the entry stays, and a
    sweep once the margin has passed again sends it."""
    submission_id = submitted(current.store)
    margin = current.settings.queue.unsent_after_seconds
    refused = time.time() + margin + 1
    with monkeypatch.context() as patch:
        patch.setattr(current.queue, "enqueue_run", refuse)
        with pytest.raises(QueueError):
            sweep(current, refused)
    client = current.store.client
    assert client.zscore(RUN_OUTBOX, submission_id) == refused  # claimed then
    assert "sweep_requeues" not in current.store.stats()[0]
    assert sweep(current, refused + margin - 1) == Sweep()
    assert sweep(current, refused + margin + 1) == Sweep(sent=[submission_id])
    assert queued_ids(client) == [submission_id]


def test_two_sweepers_at_once_send_each_unsent_submission_once(
    current: Runtime, own_redis: RedisServer
) -> None:
    """Two processes sweeping the same never-sent submissions at the same moment: every one
    is sent exactly once, by one of them."""
    unsent = sorted(submitted(current.store) for _ in range(30))
    sweepers = [current, another(own_redis)]
    at = time.time() + current.settings.queue.unsent_after_seconds + 1
    start = threading.Barrier(len(sweepers))
    results: list[Sweep] = []

    def sweep_now(runtime: Runtime) -> None:
        start.wait()
        results.append(sweep(runtime, at))

    threads = [threading.Thread(target=sweep_now, args=(r,)) for r in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sweepers[1].store.close()
    assert sorted(sid for result in results for sid in result.sent) == unsent
    assert sorted(queued_ids(current.store.client)) == unsent
    assert current.store.stats()[0]["sweep_requeues"] == len(unsent)


def test_a_requeue_the_broker_refused_is_sent_from_the_outbox(
    current: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweeper re-queued a dead worker's submission but could not send its task: the next
    sweep past the short margin sends it, not one past the queued deadline."""
    stuck = running_in(current, GONE)
    orphaned = time.time() + timing.HEARTBEAT_TTL_SECONDS + 1
    with monkeypatch.context() as patch:
        patch.setattr(current.queue, "enqueue_run", refuse)
        with pytest.raises(QueueError):
            sweep(current, orphaned)
    record = current.store.get(stuck.id)
    assert record is not None and (record.status, record.attempts) == (SubmissionStatus.QUEUED, 1)
    assert queued_ids(current.store.client) == []
    later = record.updated_at.timestamp() + current.settings.queue.unsent_after_seconds + 1
    assert later < record.updated_at.timestamp() + current.budget.queued_stale
    assert sweep(current, later) == Sweep(sent=[stuck.id])
    assert queued_ids(current.store.client) == [stuck.id]
    assert current.store.get(stuck.id) == record
