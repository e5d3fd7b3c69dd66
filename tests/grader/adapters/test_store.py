"""The Redis submission store on a real redis-server: records, idempotency, completion news."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from grader.adapters.redis_keys import DONE_CHANNEL
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
    listener = store.client.pubsub()  # type: ignore[no-untyped-call]
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
