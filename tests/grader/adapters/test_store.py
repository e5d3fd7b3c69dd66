"""The Redis submission store on a real redis-server: records, idempotency, completion news."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from grader.adapters.redis_keys import (
    DONE_CHANNEL,
    QUEUED,
    RUN_OUTBOX,
    RUNNERS,
    RUNNING,
    WEBHOOK_OUTBOX,
)
from grader.adapters.store import SubmissionStore, new_id
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus
from grader.testing import RedisServer


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    store = SubmissionStore.from_url(redis_server.url, retention_seconds=60)
    yield store
    store.client.close()


def fresh(key_id: str = "k1") -> Submission:
    return Submission(id=new_id(), key_id=key_id, challenge_id="set/challenge", code="x = 1\n")


def test_create_then_get_round_trips(store: SubmissionStore) -> None:
    submission = fresh()
    stored, created = store.create(submission)
    assert created is True
    assert store.get(submission.id) == stored
    assert 0 < store.client.ttl(f"grader:sub:{submission.id}") <= 60


def test_the_same_idempotency_key_returns_the_first(store: SubmissionStore) -> None:
    first, created = store.create(fresh(), "attempt-1")
    again, created_again = store.create(fresh(), "attempt-1")
    other_key, _ = store.create(fresh("k2"), "attempt-1")
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert other_key.id != first.id  # idempotency keys are per API key


def test_mark_running_counts_attempts_and_leaves_final_ones_alone(store: SubmissionStore) -> None:
    submission, _ = store.create(fresh())
    running = store.mark_running(submission.id)
    assert running is not None
    assert (running.status, running.attempts) == (SubmissionStatus.RUNNING, 1)
    assert running.started_at is not None
    store.finish(running, Verdict(status=VerdictStatus.PASSED))
    again = store.mark_running(submission.id)
    assert again is not None
    assert (again.status, again.attempts) == (SubmissionStatus.DONE, 1)
    assert store.mark_running("missing") is None


def test_finish_stores_the_record_and_publishes_it(store: SubmissionStore) -> None:
    """The completion message carries the stored record, so a long-poll needs no read-back."""
    submission, _ = store.create(fresh())
    listener = store.client.pubsub()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2
    listener.subscribe(f"{DONE_CHANNEL}{submission.id}")
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    done = store.finish(submission, Verdict(status=VerdictStatus.FAILED, reason="nope"))
    deadline = time.monotonic() + 5
    message = None
    while message is None and time.monotonic() < deadline:
        message = listener.get_message(ignore_subscribe_messages=True, timeout=1)
    listener.close()
    assert message is not None
    published = Submission.model_validate_json(message["data"])
    assert published == done == store.get(submission.id)
    assert published.status is SubmissionStatus.DONE
    assert published.verdict is not None and published.verdict.reason == "nope"
    assert published.finished_at is not None and published.finished_at == published.updated_at


def test_finish_twice_records_and_counts_once(store: SubmissionStore) -> None:
    """A second finish (a retry after a lost reply, a redelivered task) writes and counts
    nothing: the first result stays, announced again."""
    submission, _ = store.create(fresh())
    running = store.mark_running(submission.id)
    assert running is not None
    before_stats, before_latency = store.stats()
    first, written = store.complete(running.model_copy(), Verdict(status=VerdictStatus.PASSED))
    again, written_again = store.complete(
        running.model_copy(), Verdict(status=VerdictStatus.FAILED, reason="late")
    )
    stats, latency = store.stats()
    assert (written, written_again) == (True, False)
    assert again == first == store.get(submission.id)
    assert again.verdict is not None and again.verdict.status is VerdictStatus.PASSED
    assert stats.get("verdict:passed", 0) - before_stats.get("verdict:passed", 0) == 1
    assert stats.get("verdict:failed", 0) == before_stats.get("verdict:failed", 0)
    assert latency["count"] - before_latency.get("count", 0) == 1


def test_the_index_of_unfinished_submissions_follows_the_lifecycle(store: SubmissionStore) -> None:
    """Queued, running (with the worker running it), then final: out of the index."""
    client = store.client
    submission, _ = store.create(fresh())
    sid = submission.id
    assert client.zscore(QUEUED, sid) == submission.updated_at.timestamp()
    running = store.mark_running(sid, worker="host:1")
    assert running is not None and running.started_at is not None
    assert client.zscore(QUEUED, sid) is None
    assert client.zscore(RUNNING, sid) == running.started_at.timestamp()
    assert client.hget(RUNNERS, sid) == b"host:1"
    store.finish(running, Verdict(status=VerdictStatus.PASSED))
    assert (client.zscore(QUEUED, sid), client.zscore(RUNNING, sid)) == (None, None)
    assert client.hget(RUNNERS, sid) is None


def test_update_acts_on_the_record_as_stored_when_raced(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A change raced by another writer between its read and its write runs again on the new
    record (WATCH/MULTI), so it never acts on a state that is gone."""
    submission, _ = store.create(fresh())
    other = SubmissionStore.from_url(redis_server.url, 60)
    seen: list[SubmissionStatus] = []

    def requeue_if_queued(stored: Submission) -> Submission | None:
        seen.append(stored.status)
        if len(seen) == 1:  # another writer gets in between our read and our write
            other.mark_running(submission.id, worker="other:1")
        if stored.status is not SubmissionStatus.QUEUED:
            return None
        return stored.model_copy(update={"attempts": 99})

    record, written = store.update(submission.id, requeue_if_queued, count="raced")
    other.close()
    assert seen == [SubmissionStatus.QUEUED, SubmissionStatus.RUNNING]
    assert written is False
    assert record is not None and (record.status, record.attempts) == (SubmissionStatus.RUNNING, 1)
    assert store.get(submission.id) == record


def test_orphans_are_running_submissions_of_workers_without_a_heartbeat(
    store: SubmissionStore,
) -> None:
    """Only the submissions of a worker process whose heartbeat is gone are orphans."""
    alive, _ = store.create(fresh())
    gone, _ = store.create(fresh())
    store.beat("alive-host:1", docker=True, ttl=30)
    store.mark_running(alive.id, worker="alive-host:1")
    store.mark_running(gone.id, worker="gone-host:2")
    orphans = store.orphans()
    assert gone.id in orphans
    assert alive.id not in orphans


def test_a_due_webhook_is_claimed_by_one_caller(store: SubmissionStore) -> None:
    """A result stored with its webhook is in the outbox; claiming it re-scores it, so a
    second claimer at the same time gets nothing, until it is queued and out."""
    submission, _ = store.create(fresh().model_copy(update={"callback_url": "https://x.test/"}))
    store.complete(submission, Verdict(status=VerdictStatus.PASSED), webhook=True)
    before = time.time()
    assert submission.id in store.webhooks_due(before, 1000)
    assert submission.id not in store.webhooks_due(before, 1000)
    store.webhook_queued(submission.id)
    assert store.client.zscore(WEBHOOK_OUTBOX, submission.id) is None


def test_a_new_submission_waits_in_the_outbox_of_runs_until_its_task_is_sent(
    store: SubmissionStore,
) -> None:
    """Stored with its outbox entry; sent: out, and a replay of it finds nothing to send."""
    submission, _ = store.create(fresh(), "sent-once")
    assert store.client.zscore(RUN_OUTBOX, submission.id) == submission.updated_at.timestamp()
    assert store.run_unsent(submission.id) is True
    store.run_queued(submission.id)
    replayed, created = store.create(fresh(), "sent-once")
    assert (replayed.id, created) == (submission.id, False)
    assert store.run_unsent(submission.id) is False
    assert store.client.zscore(RUN_OUTBOX, submission.id) is None


@pytest.mark.parametrize("final", [False, True])
def test_a_pickup_or_a_result_takes_a_submission_out_of_the_outbox_of_runs(
    store: SubmissionStore, final: bool
) -> None:
    """Its task was delivered (or none is needed) even if the sender never said it was sent."""
    submission, _ = store.create(fresh())
    if final:
        store.finish(submission, Verdict(status=VerdictStatus.PASSED))
    else:
        store.mark_running(submission.id, worker="host:1")
    assert store.run_unsent(submission.id) is False


def test_a_due_run_is_claimed_by_one_caller_and_counted_when_sent(
    store: SubmissionStore,
) -> None:
    """Claiming an unsent run re-scores it (a second claimer gets nothing until it is due
    again); sending it takes it out and bumps the counter named."""
    submission, _ = store.create(fresh())
    before = time.time()
    counted = store.stats()[0].get("unsent_test", 0)
    assert submission.id not in store.runs_due(submission.updated_at.timestamp() - 1, 1000)
    assert submission.id in store.runs_due(before, 1000)
    assert submission.id not in store.runs_due(before, 1000)
    assert store.run_unsent(submission.id) is True
    store.run_queued(submission.id, count="unsent_test")
    assert store.run_unsent(submission.id) is False
    assert store.stats()[0]["unsent_test"] == counted + 1
