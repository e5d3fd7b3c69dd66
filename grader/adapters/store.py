"""The submission store in Redis: submissions, results, idempotency keys and counters.

One JSON document per submission under ``grader:sub:<id>``, kept for the retention period.
Completion is published on ``grader:done:<id>``, with the stored record as the message, so
long-polls wake at once and answer without reading it back.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import redis

from ..constants import REDIS_PREFIX
from ..domain.submission import Submission, SubmissionStatus, now
from ..domain.verdict import Verdict
from ..errors import StoreError

SUB = f"{REDIS_PREFIX}sub:"
IDEMPOTENCY = f"{REDIS_PREFIX}idem:"
DONE_CHANNEL = f"{REDIS_PREFIX}done:"
STATS = f"{REDIS_PREFIX}stats"
LATENCY = f"{REDIS_PREFIX}latency"
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def new_id() -> str:
    return uuid.uuid4().hex


class SubmissionStore:
    """Reads and writes submissions; every Redis error becomes ``StoreError``."""

    def __init__(self, client: redis.Redis, retention_seconds: int) -> None:
        self._redis = client
        self._retention = retention_seconds

    @classmethod
    def from_url(cls, url: str, retention_seconds: int) -> SubmissionStore:
        return cls(
            redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5),
            retention_seconds,
        )

    @property
    def client(self) -> redis.Redis:
        return self._redis

    def create(
        self, submission: Submission, idempotency_key: str | None = None
    ) -> tuple[Submission, bool]:
        """Store a new submission; with an idempotency key, return the earlier one instead."""
        try:
            if idempotency_key is not None:
                digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
                key = f"{IDEMPOTENCY}{submission.key_id}:{digest}"
                if not self._redis.set(key, submission.id, nx=True, ex=self._retention):
                    earlier = self._redis.get(key)
                    found = self.get(_text(earlier)) if earlier else None
                    if found is not None:
                        return found, False
                    self._redis.set(key, submission.id, ex=self._retention)
            self.save(submission)
        except redis.RedisError as exc:
            raise StoreError(f"cannot store the submission: {exc}") from None
        return submission, True

    def save(self, submission: Submission) -> None:
        submission.updated_at = now()
        try:
            self._redis.set(
                f"{SUB}{submission.id}", submission.model_dump_json(), ex=self._retention
            )
        except redis.RedisError as exc:
            raise StoreError(f"cannot save submission {submission.id}: {exc}") from None

    def get(self, submission_id: str) -> Submission | None:
        try:
            raw = self._redis.get(f"{SUB}{submission_id}")
        except redis.RedisError as exc:
            raise StoreError(f"cannot read submission {submission_id}: {exc}") from None
        return Submission.model_validate_json(raw) if raw else None

    def mark_running(self, submission_id: str) -> Submission | None:
        submission = self.get(submission_id)
        if submission is None or submission.status in (
            SubmissionStatus.DONE,
            SubmissionStatus.FAILED,
        ):
            return submission
        submission.status = SubmissionStatus.RUNNING
        submission.started_at = now()
        submission.attempts += 1
        self.save(submission)
        return submission

    def finish(
        self,
        submission: Submission,
        verdict: Verdict,
        *,
        failed: bool = False,
        packages: dict[str, str] | None = None,
        error: str | None = None,
    ) -> Submission:
        """Record the verdict, count it, and wake anyone waiting."""
        submission.status = SubmissionStatus.FAILED if failed else SubmissionStatus.DONE
        submission.verdict = verdict
        submission.finished_at = now()
        submission.updated_at = submission.finished_at
        submission.error = error
        if packages is not None:
            submission.environment_packages = packages
        body = submission.model_dump_json()
        latency = (submission.finished_at - submission.created_at).total_seconds()
        try:  # one round trip: the record, the counters, and the news with the record itself
            pipe = self._redis.pipeline()
            pipe.set(f"{SUB}{submission.id}", body, ex=self._retention)
            pipe.hincrby(STATS, f"verdict:{verdict.status.value}", 1)
            if verdict.status.value == "sandbox_error":
                pipe.hincrby(STATS, "sandbox_failures", 1)
            for bound in LATENCY_BUCKETS:
                if latency <= bound:
                    pipe.hincrby(LATENCY, f"le:{bound}", 1)
            pipe.hincrby(LATENCY, "count", 1)
            pipe.hincrbyfloat(LATENCY, "sum", latency)
            pipe.publish(f"{DONE_CHANNEL}{submission.id}", body)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"cannot record the result of {submission.id}: {exc}") from None
        return submission

    def count(self, name: str) -> None:
        try:
            self._redis.hincrby(STATS, name, 1)
        except redis.RedisError as exc:
            raise StoreError(f"cannot count {name}: {exc}") from None

    def stats(self) -> tuple[dict[str, float], dict[str, float]]:
        try:
            raw_stats: dict[Any, Any] = dict(self._redis.hgetall(STATS))
            raw_latency: dict[Any, Any] = dict(self._redis.hgetall(LATENCY))
        except redis.RedisError as exc:
            raise StoreError(f"cannot read statistics: {exc}") from None
        return _decode(raw_stats), _decode(raw_latency)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(raw: dict[Any, Any]) -> dict[str, float]:
    return {key.decode(): float(value) for key, value in raw.items()}
