"""Learners' sessions on a real redis-server: attempts counted with the submission, in one
transaction; the clock kept on reopening; results and badges recorded once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from redis.client import Pipeline

from grader.adapters.redis_keys import SUBMISSION
from grader.adapters.sessions import AttemptGate
from grader.adapters.store import SubmissionStore, new_id
from grader.domain.challenge import Kind
from grader.domain.feedback import Terms
from grader.domain.sets import Badge
from grader.domain.submission import Submission
from grader.domain.verdict import Verdict, VerdictStatus, failing, passing
from grader.errors import AttemptsExhausted
from grader.testing import RedisServer

CHALLENGE = "quiz/q1"


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    store = SubmissionStore.from_url(redis_server.url, retention_seconds=600)
    yield store
    store.client.close()


def terms(attempt: int, opened_at: datetime, at: datetime) -> Terms:
    return Terms(kind=Kind.CONCEPTUAL, attempt=attempt, attempts_allowed=2, opened_at=opened_at)


def answer(learner: str, challenge: str = CHALLENGE) -> Submission:
    return Submission(
        id=new_id(), key_id="k1", challenge_id=challenge, choice="A", learner_id=learner
    )


def gate(store: SubmissionStore, learner: str, allowed: int | None = 2) -> AttemptGate:
    return store.sessions.gate("k1", learner, CHALLENGE, allowed, terms)


def test_attempts_past_the_limit_are_refused_and_store_nothing(store: SubmissionStore) -> None:
    """Two answers are stored as attempts 1 and 2; the third raises and stores no record."""
    who = uuid.uuid4().hex
    for number in (1, 2):
        stored, created = store.create(answer(who), gate=gate(store, who))
        assert created is True
        assert stored.terms is not None and stored.terms.attempt == number
    refused = answer(who)
    with pytest.raises(AttemptsExhausted, match="used all 2 attempts"):
        store.create(refused, gate=gate(store, who))
    assert store.client.exists(f"{SUBMISSION}{refused.id}") == 0
    assert store.sessions.read("k1", who, [CHALLENGE])[CHALLENGE].used == 2


def test_a_refused_idempotent_retry_is_refused_again(store: SubmissionStore) -> None:
    """An Idempotency-Key whose answer was refused does not point at a record that was never
    stored: its retry is refused the same way."""
    who = uuid.uuid4().hex
    store.create(answer(who), gate=gate(store, who, allowed=1))
    for _ in range(2):
        with pytest.raises(AttemptsExhausted):
            store.create(answer(who), "same-key", gate=gate(store, who, allowed=1))


@dataclass
class Interleaved:
    """A gate that, between reading the session and writing, lets a rival answer in: the
    interleaving two parallel requests can have, made certain."""

    inner: AttemptGate
    rival: object
    raced: bool = False

    @property
    def key(self) -> str:
        return self.inner.key

    def admit(self, pipe: Pipeline, submission: Submission) -> Submission:
        admitted = self.inner.admit(pipe, submission)
        if not self.raced:
            self.raced = True
            self.rival()  # type: ignore[operator]
        return admitted

    def record(self, pipe: Pipeline, submission: Submission) -> None:
        self.inner.record(pipe, submission)


def test_two_answers_racing_for_the_last_attempt_count_once(store: SubmissionStore) -> None:
    """The rival takes the last attempt between our read and our write: our transaction is
    retried, sees no attempt left, and refuses; one record, attempts used = 2."""
    who = uuid.uuid4().hex
    store.create(answer(who), gate=gate(store, who))
    rival = answer(who)
    mine = answer(who)
    racing = Interleaved(gate(store, who), lambda: store.create(rival, gate=gate(store, who)))
    with pytest.raises(AttemptsExhausted):
        store.create(mine, gate=racing)
    assert racing.raced is True
    assert store.get(rival.id) is not None
    assert store.get(mine.id) is None
    assert store.sessions.read("k1", who, [CHALLENGE])[CHALLENGE].used == 2


def test_opening_again_keeps_the_first_time(store: SubmissionStore) -> None:
    """The clock starts at the first opening; a second opening and an answer keep it."""
    who = uuid.uuid4().hex
    first = store.sessions.open("k1", who, CHALLENGE)
    time.sleep(0.01)
    again = store.sessions.open("k1", who, CHALLENGE)
    stored, _ = store.create(answer(who), gate=gate(store, who))
    assert first.opened_at is not None
    assert again.opened_at == first.opened_at
    assert stored.terms is not None and stored.terms.opened_at == first.opened_at


def test_learners_are_scoped_to_their_key(store: SubmissionStore) -> None:
    """The same learner_id under another key has a session of its own."""
    who = uuid.uuid4().hex
    store.sessions.open("k1", who, CHALLENGE)
    assert store.sessions.read("k2", who, [CHALLENGE])[CHALLENGE].opened_at is None


def graded(
    store: SubmissionStore, who: str, challenge: str, verdict: Verdict, **fields: object
) -> Submission:
    submission = answer(who, challenge)
    submission.terms = Terms(
        kind=Kind.CONCEPTUAL,
        attempt=1,
        attempts_allowed=2,
        set_members=("quiz/q1", "quiz/q2"),
        badge=Badge(name="Quiz master"),
        **fields,
    )
    submission.badge = store.sessions.settle(submission, verdict)
    return submission


def test_the_badge_is_awarded_once_by_the_pass_that_completes_the_set(
    store: SubmissionStore,
) -> None:
    """q1 passed: no badge; q2 passed: badge, by that submission; settling it again returns
    the same badge; a later pass earns nothing."""
    who = uuid.uuid4().hex
    assert graded(store, who, "quiz/q1", passing()).badge is None
    wrong = graded(store, who, "quiz/q2", failing("no"))
    assert wrong.badge is None
    earning = graded(store, who, "quiz/q2", passing())
    assert earning.badge is not None
    assert (earning.badge.name, earning.badge.submission_id) == ("Quiz master", earning.id)
    assert store.sessions.settle(earning, passing()) == earning.badge
    assert graded(store, who, "quiz/q1", passing()).badge is None
    assert store.sessions.earned("k1", who, "quiz") == earning.badge


def test_a_late_pass_that_does_not_score_earns_no_badge(store: SubmissionStore) -> None:
    """Late answers score 0 unless the set says otherwise: no badge from them."""
    who = uuid.uuid4().hex
    graded(store, who, "quiz/q1", passing())
    late = graded(store, who, "quiz/q2", passing(), late=True)
    assert late.badge is None
    session = store.sessions.read("k1", who, ["quiz/q2"])["quiz/q2"]
    assert (session.passed, session.passed_late, session.best_score) == (False, True, 0.0)


def test_our_failure_gives_the_attempt_back_once(store: SubmissionStore) -> None:
    """A sandbox_error is no answer of the learner's: nothing recorded, its attempt given
    back, once however often it is settled."""
    who = uuid.uuid4().hex
    stored, _ = store.create(answer(who), gate=gate(store, who))
    assert store.sessions.read("k1", who, [CHALLENGE])[CHALLENGE].used == 1
    for _ in range(2):
        store.sessions.settle(stored, Verdict(status=VerdictStatus.SANDBOX_ERROR))
    session = store.sessions.read("k1", who, [CHALLENGE])[CHALLENGE]
    assert (session.used, session.results) == (0, {})
