"""Learners' sessions in Redis: when each challenge was opened, attempts used, graded results,
and the badges earned.

A learner is a ``learner_id`` of one API key (two platforms never share learners). A session
opens when the learner opens the challenge, or with their first answer; opening again keeps
the first time, so the deadline never moves. Attempts are counted in the transaction that
stores the submission (``AttemptGate`` with ``SubmissionStore.create``): a refused answer
stores nothing, and two answers racing for the last attempt cannot both count. Every record
lives for the retention period after its last change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast

import redis
from redis.client import Pipeline

from ..domain.feedback import Terms, scores
from ..domain.sets import EarnedBadge, badge_holds
from ..domain.submission import Submission, now
from ..domain.verdict import Verdict, VerdictStatus
from ..errors import AttemptsExhausted, StoreError
from .redis_keys import BADGE, LEARNER

_OPENED, _USED, _RESULT, _REFUND = "opened_at", "used", "r:", "x:"


class Gate(Protocol):
    """A rule checked, and a record written, in the transaction that stores a submission."""

    @property
    def key(self) -> str:
        """The key the rule reads; it is watched, so a concurrent change retries the whole."""
        ...

    def admit(self, pipe: Pipeline, submission: Submission) -> Submission:
        """The submission as admitted (reading ``key`` through ``pipe``), or raise to refuse."""
        ...

    def record(self, pipe: Pipeline, submission: Submission) -> None:
        """Queue the rule's own writes in the transaction."""
        ...


@dataclass(frozen=True)
class Result:
    """One graded answer of a session: its verdict, its score, whether it counts."""

    status: str
    score: float
    scored: bool

    @property
    def passed(self) -> bool:
        return self.status == VerdictStatus.PASSED.value


@dataclass(frozen=True)
class Session:
    """One learner at one challenge."""

    opened_at: datetime | None = None
    used: int = 0
    results: dict[str, Result] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> Session:
        values = {k.decode(): v.decode() for k, v in raw.items()}
        opened = values.get(_OPENED)
        results = {}
        for name, value in values.items():
            if name.startswith(_RESULT):
                status, score, scored = value.split("|")
                results[name.removeprefix(_RESULT)] = Result(status, float(score), scored == "1")
        return cls(
            opened_at=datetime.fromtimestamp(float(opened), UTC) if opened else None,
            used=int(values.get(_USED, "0")),
            results=results,
        )

    @property
    def passed(self) -> bool:
        """Passed with an answer that counts."""
        return any(r.passed and r.scored for r in self.results.values())

    @property
    def passed_late(self) -> bool:
        return any(r.passed and not r.scored for r in self.results.values())

    @property
    def wrong(self) -> int:
        return sum(not r.passed for r in self.results.values())

    @property
    def best_score(self) -> float:
        return max((r.score for r in self.results.values() if r.scored), default=0.0)


def learner_digest(learner_id: str) -> str:
    return hashlib.sha256(learner_id.encode()).hexdigest()[:32]


TermsFor = Callable[[int, datetime, datetime], Terms]
"""The terms of an answer: from its attempt number, when its session opened, and now."""


@dataclass(frozen=True)
class AttemptGate:
    """The attempts rule of one learner at one challenge (``Gate`` of ``create``)."""

    key: str
    allowed: int | None
    terms: TermsFor
    ttl: int

    def admit(self, pipe: Pipeline, submission: Submission) -> Submission:
        session = Session.from_hash(cast(dict[bytes, bytes], pipe.hgetall(self.key)))
        if self.allowed is not None and session.used >= self.allowed:
            raise AttemptsExhausted(
                f"learner {submission.learner_id!r} has used all {self.allowed} attempts at "
                f"{submission.challenge_id!r}"
            )
        at = now()
        terms = self.terms(session.used + 1, session.opened_at or at, at)
        return submission.model_copy(update={"terms": terms})

    def record(self, pipe: Pipeline, submission: Submission) -> None:
        terms = submission.terms
        if terms is None or terms.attempt is None:
            return
        if terms.opened_at is not None:
            pipe.hsetnx(self.key, _OPENED, terms.opened_at.timestamp())
        pipe.hset(self.key, _USED, terms.attempt)
        pipe.expire(self.key, self.ttl)


class SessionStore:
    """Reads and writes sessions and badges; every Redis error becomes ``StoreError``."""

    def __init__(self, client: redis.Redis, retention_seconds: int) -> None:
        self._redis = client
        self._ttl = retention_seconds

    @staticmethod
    def key(key_id: str, learner_id: str, challenge_id: str) -> str:
        return f"{LEARNER}{key_id}:{learner_digest(learner_id)}:{challenge_id}"

    @staticmethod
    def badge_key(key_id: str, learner_id: str, set_name: str) -> str:
        return f"{BADGE}{key_id}:{learner_digest(learner_id)}:{set_name}"

    def gate(
        self, key_id: str, learner_id: str, challenge_id: str, allowed: int | None, terms: TermsFor
    ) -> AttemptGate:
        return AttemptGate(self.key(key_id, learner_id, challenge_id), allowed, terms, self._ttl)

    def open(self, key_id: str, learner_id: str, challenge_id: str) -> Session:
        """Open the session now, or keep the time it first opened; the session as it is."""
        key = self.key(key_id, learner_id, challenge_id)
        try:
            pipe = self._redis.pipeline()
            pipe.hsetnx(key, _OPENED, now().timestamp())
            pipe.expire(key, self._ttl)
            pipe.hgetall(key)
            raw = pipe.execute()[-1]
        except redis.RedisError as exc:
            raise StoreError(f"cannot open a session: {exc}") from None
        return Session.from_hash(raw)

    def read(
        self, key_id: str, learner_id: str, challenge_ids: Iterable[str]
    ) -> dict[str, Session]:
        """The sessions of one learner at these challenges (an empty one where none opened)."""
        ids = list(challenge_ids)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for challenge_id in ids:
                pipe.hgetall(self.key(key_id, learner_id, challenge_id))
            raws = pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"cannot read sessions: {exc}") from None
        return {i: Session.from_hash(raw) for i, raw in zip(ids, raws, strict=True)}

    def earned(self, key_id: str, learner_id: str, set_name: str) -> EarnedBadge | None:
        try:
            raw = self._redis.get(self.badge_key(key_id, learner_id, set_name))
        except redis.RedisError as exc:
            raise StoreError(f"cannot read a badge: {exc}") from None
        return EarnedBadge.model_validate_json(raw) if raw else None

    def settle(self, submission: Submission, verdict: Verdict) -> EarnedBadge | None:
        """Record a graded answer in its learner's session (once per submission); when it is
        a pass that completes the set's badge rule, award the badge (once per learner and
        set). Returns the badge if this submission earned it (again on a repeat)."""
        terms, learner = submission.terms, submission.learner_id
        if terms is None or terms.attempt is None or learner is None:
            return None
        key = self.key(submission.key_id, learner, submission.challenge_id)
        if verdict.status is VerdictStatus.SANDBOX_ERROR:
            self._refund(key, submission.id)  # our failure is no answer of the learner's
            return None
        counts = scores(terms)
        value = f"{verdict.status.value}|{verdict.score if counts else 0.0}|{int(counts)}"
        try:
            pipe = self._redis.pipeline()
            pipe.hsetnx(key, f"{_RESULT}{submission.id}", value)
            pipe.expire(key, self._ttl)
            pipe.execute()
            if terms.badge is None or not (verdict.passed and counts):
                return None
            return self._award(submission, terms, learner)
        except redis.RedisError as exc:
            raise StoreError(f"cannot record a learner's result: {exc}") from None

    def _refund(self, key: str, submission_id: str) -> None:
        """Give back the attempt a submission took, once (our failure used it up)."""
        try:
            if self._redis.hsetnx(key, f"{_REFUND}{submission_id}", 1):
                self._redis.hincrby(key, _USED, -1)
        except redis.RedisError as exc:
            raise StoreError(f"cannot give an attempt back: {exc}") from None

    def _award(self, submission: Submission, terms: Terms, learner: str) -> EarnedBadge | None:
        assert terms.badge is not None  # noqa: S101  checked by the caller
        set_name = submission.challenge_id.split("/", 1)[0]
        sessions = self.read(submission.key_id, learner, terms.set_members)
        passed = sum(s.passed for s in sessions.values())
        score = sum(s.best_score for s in sessions.values()) / max(1, len(sessions))
        if not badge_holds(terms.badge, passed, len(terms.set_members), score):
            return None
        badge = EarnedBadge(
            set=set_name, name=terms.badge.name, earned_at=now(), submission_id=submission.id
        )
        key = self.badge_key(submission.key_id, learner, set_name)
        if self._redis.set(key, badge.model_dump_json(), nx=True, ex=self._ttl):
            return badge
        raw = self._redis.get(key)
        earlier = EarnedBadge.model_validate_json(raw) if raw else None
        return earlier if earlier is not None and earlier.submission_id == submission.id else None
