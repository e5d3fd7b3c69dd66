"""The store in Redis: submissions, results, idempotency keys, counters, rate windows, and
what workers publish about themselves (heartbeats, environments).

The one way product code reaches Redis (besides Celery's broker and the API's completion
subscription); key names are in ``redis_keys``. One JSON document per submission, kept for the
retention period. Completion is published with the stored record as the message, so
long-polls wake at once and answer without reading it back.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import redis

from ..domain.submission import Submission, SubmissionStatus, now
from ..domain.verdict import Verdict, VerdictStatus
from ..errors import StoreError
from .redis_keys import (
    DONE_CHANNEL,
    ENVIRONMENT,
    HEARTBEAT,
    IDEMPOTENCY,
    LATENCY,
    RATE,
    STATS,
    SUBMISSION,
)

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
        """The Redis client itself, for tests and diagnostics."""
        return self._redis

    def close(self) -> None:
        self._redis.close()

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
                f"{SUBMISSION}{submission.id}", submission.model_dump_json(), ex=self._retention
            )
        except redis.RedisError as exc:
            raise StoreError(f"cannot save submission {submission.id}: {exc}") from None

    def get(self, submission_id: str) -> Submission | None:
        try:
            raw = self._redis.get(f"{SUBMISSION}{submission_id}")
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
            pipe.set(f"{SUBMISSION}{submission.id}", body, ex=self._retention)
            pipe.hincrby(STATS, f"verdict:{verdict.status.value}", 1)
            if verdict.status is VerdictStatus.SANDBOX_ERROR:
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

    def count_in_window(self, key_id: str, window: int, cost: int) -> int:
        """Add ``cost`` to one key's requests in one rate window; the window's total."""
        name = f"{RATE}{key_id}:{window}"
        try:
            pipe = self._redis.pipeline()
            pipe.incrby(name, cost)
            pipe.expire(name, 120)
            return int(pipe.execute()[0])
        except redis.RedisError as exc:
            raise StoreError(f"rate limiter unavailable: {exc}") from None

    def queue_depth(self, queue: str) -> int:
        """Tasks waiting in one Celery queue (a Redis list named after it)."""
        try:
            return int(self._redis.llen(queue))
        except redis.RedisError as exc:
            raise StoreError(f"cannot read the depth of {queue}: {exc}") from None

    # what workers publish about themselves --------------------------------------------------

    def beat(self, worker: str, *, docker: bool, ttl: int) -> None:
        """A worker process is alive (for ``ttl`` seconds) and whether its engine answers."""
        try:
            self._redis.set(f"{HEARTBEAT}{worker}", json.dumps({"docker": docker}), ex=ttl)
        except redis.RedisError as exc:
            raise StoreError(f"cannot record the heartbeat of {worker}: {exc}") from None

    def workers(self) -> list[dict[str, Any]]:
        """The live worker processes: ``{"name": "<host>:<pid>", "docker": bool}`` each."""
        found = []
        try:
            for name in self._redis.scan_iter(match=f"{HEARTBEAT}*", count=100):
                raw = self._redis.get(name)
                if raw:
                    found.append({"name": _text(name)[len(HEARTBEAT) :], **json.loads(raw)})
        except redis.RedisError as exc:
            raise StoreError(f"cannot read worker heartbeats: {exc}") from None
        return found

    def publish_environment(self, name: str, image_id: str, packages: dict[str, str]) -> None:
        """What ``/v1/environments`` shows: the image an environment runs on the workers."""
        body = json.dumps({"image_id": image_id, "packages": packages})
        try:
            self._redis.set(f"{ENVIRONMENT}{name}", body)
        except redis.RedisError as exc:
            raise StoreError(f"cannot publish environment {name}: {exc}") from None

    def environments(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """What the workers published for each of ``names`` (absent: not served yet)."""
        found = {}
        try:
            for name in names:
                raw = self._redis.get(f"{ENVIRONMENT}{name}")
                if raw:
                    found[name] = json.loads(raw)
        except redis.RedisError as exc:
            raise StoreError(f"cannot read environment info: {exc}") from None
        return found

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(raw: dict[Any, Any]) -> dict[str, float]:
    return {key.decode(): float(value) for key, value in raw.items()}
