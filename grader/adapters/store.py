"""The submission store in Redis: submissions, results, idempotency keys, the index of
unfinished submissions and the outboxes of runs and webhooks (the rest of what Redis holds:
``cluster.py``).

The one way product code reaches Redis (besides Celery's broker and the API's completion
subscription); key names are in ``redis_keys``. One JSON document per submission, kept for the
retention period. Completion is published with the stored record as the message, so
long-polls wake at once and answer without reading it back. Each lifecycle change writes the
record with its place in the index of unfinished submissions, where sweepers find stuck ones
without a SCAN; changes that must not happen twice are conditional on the stored record
(WATCH/MULTI), so a repeat or a race changes nothing.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import TypeVar, cast

import redis
from redis.client import Pipeline

from ..domain.submission import Submission, SubmissionStatus, now
from ..domain.verdict import Verdict, VerdictStatus
from ..errors import AttemptsExhausted, StoreError
from .book import Book
from .cluster import LATENCY_BUCKETS, ClusterStore, text
from .redis_keys import (
    BANK_SUBMISSIONS,
    BOOK,
    BOOK_OF_KEY,
    DONE_CHANNEL,
    HEARTBEAT,
    IDEMPOTENCY,
    LATENCY,
    QUEUED,
    RUN_OUTBOX,
    RUNNERS,
    RUNNING,
    STATS,
    SUBMISSION,
    WEBHOOK_OUTBOX,
)
from .sessions import Gate, SessionStore

FINAL = frozenset({SubmissionStatus.DONE, SubmissionStatus.FAILED})
Change = Callable[[Submission], Submission | None]
"""The new record for the one stored, or None to leave it as it is."""
T = TypeVar("T")

# Claim the due entries of a sorted set at once: each is re-scored to now, so a concurrent
# claimer does not take it again until it is due again.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"""


def new_id() -> str:
    return uuid.uuid4().hex


class SubmissionStore(ClusterStore):
    """Reads and writes submissions; every Redis error becomes ``StoreError``.

    What the cluster shares besides submissions (counters, rate windows, heartbeats,
    environments) comes from ``ClusterStore``.
    """

    def __init__(self, client: redis.Redis, retention_seconds: int) -> None:
        super().__init__(client, retention_seconds)
        self._claim_due = client.register_script(_CLAIM_DUE)
        self.sessions = SessionStore(client, retention_seconds)
        self.book = Book(client)

    def create(
        self, submission: Submission, idempotency_key: str | None = None, gate: Gate | None = None
    ) -> tuple[Submission, bool]:
        """Store a new submission; with an idempotency key, return the earlier one instead.

        A new submission goes into the outbox of runs with it (``run_queued`` takes it out once
        its task is sent), and into the gradebook's indexes. With a ``gate`` (a learner's
        attempts), the rule is checked and recorded in the one transaction that stores it: a
        refusal stores nothing, and two racing submissions cannot both pass a rule only one may.
        """
        idem: str | None = None
        try:
            if idempotency_key is not None:
                digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
                idem = f"{IDEMPOTENCY}{submission.key_id}:{digest}"
                if not self._redis.set(idem, submission.id, nx=True, ex=self._retention):
                    earlier = self._redis.get(idem)
                    found = self.get(text(earlier)) if earlier else None
                    if found is not None:
                        return found, False
                    self._redis.set(idem, submission.id, ex=self._retention)
            if gate is None:
                self.save(submission, unsent=True, new=True)
                return submission, True
        except redis.RedisError as exc:
            raise StoreError(f"cannot store the submission: {exc}") from None
        try:
            return self._create_gated(submission, gate), True
        except AttemptsExhausted:
            if idem is not None:  # a retry of this refusal is refused again, not "found"
                self._redis.delete(idem)
            raise

    def _create_gated(self, submission: Submission, gate: Gate) -> Submission:
        def attempt(pipe: Pipeline) -> Submission:
            admitted = gate.admit(pipe, submission)
            admitted.updated_at = now()
            pipe.multi()
            self._write(pipe, admitted, unsent=True, new=True)
            gate.record(pipe, admitted)
            return admitted

        return self._atomically(gate.key, attempt, "cannot store the submission")

    def _write(self, pipe: Pipeline, submission: Submission, *, unsent: bool, new: bool) -> None:
        pipe.set(f"{SUBMISSION}{submission.id}", submission.model_dump_json(), ex=self._retention)
        _index(pipe, submission, unsent=unsent)
        # what a regrade of the challenge re-runs (grader.adapters.bank)
        by_challenge = f"{BANK_SUBMISSIONS}{submission.challenge_id}"
        pipe.zadd(by_challenge, {submission.id: submission.created_at.timestamp()})
        pipe.expire(by_challenge, self._retention)
        if new:  # the gradebook's order: by creation, trimmed to the retention period
            created = submission.created_at.timestamp()
            for book in (BOOK, f"{BOOK_OF_KEY}{submission.key_id}"):
                pipe.zadd(book, {submission.id: created})
                pipe.zremrangebyscore(book, "-inf", f"({created - self._retention}")
                pipe.expire(book, self._retention)

    def save(self, submission: Submission, *, unsent: bool = False, new: bool = False) -> None:
        """Write the record as it is, indexed by its status; ``unsent``: a queued one whose
        task is still to be sent, in the outbox of runs; ``new``: into the gradebook too."""
        submission.updated_at = now()
        try:
            pipe = self._redis.pipeline()
            self._write(pipe, submission, unsent=unsent, new=new)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"cannot save submission {submission.id}: {exc}") from None

    def get(self, submission_id: str) -> Submission | None:
        try:
            raw = self._redis.get(f"{SUBMISSION}{submission_id}")
        except redis.RedisError as exc:
            raise StoreError(f"cannot read submission {submission_id}: {exc}") from None
        return Submission.model_validate_json(raw) if raw else None

    def mark_running(self, submission_id: str, worker: str | None = None) -> Submission | None:
        """Start an attempt: ``running``, one more attempt, indexed by its start and by the
        worker process running it. A final or missing record is returned as it is."""

        def start(found: Submission) -> Submission | None:
            if found.status in FINAL:
                return None
            started = found.model_copy()
            started.status, started.started_at = SubmissionStatus.RUNNING, now()
            started.attempts += 1
            return started

        return self.update(submission_id, start, worker=worker)[0]

    def update(
        self,
        submission_id: str,
        change: Change,
        *,
        worker: str | None = None,
        count: str | None = None,
        unsent: bool = False,
    ) -> tuple[Submission | None, bool]:
        """Replace the stored record by ``change(record)`` atomically, unless that is None: two
        callers never both act on one state. ``count`` names a counter bumped with the write;
        ``unsent`` puts a queued record in the outbox of runs with it. Returns the record as it
        now is (None if missing) and whether it was written."""
        key = f"{SUBMISSION}{submission_id}"

        def attempt(pipe: Pipeline) -> tuple[Submission | None, bool]:
            raw = pipe.get(key)
            found = Submission.model_validate_json(raw) if raw else None
            changed = change(found) if found is not None else None
            if changed is None:
                return found, False
            changed.updated_at = now()
            pipe.multi()
            pipe.set(key, changed.model_dump_json(), ex=self._retention)
            _index(pipe, changed, worker, unsent=unsent)
            if count is not None:
                pipe.hincrby(STATS, count, 1)
            return changed, True

        return self._atomically(key, attempt, f"cannot update submission {submission_id}")

    def finish(
        self,
        submission: Submission,
        verdict: Verdict,
        *,
        failed: bool = False,
        packages: dict[str, str] | None = None,
        error: str | None = None,
        webhook: bool = False,
    ) -> Submission:
        """Record the verdict once, count it, and wake anyone waiting (see ``complete``)."""
        return self.complete(
            submission, verdict, failed=failed, packages=packages, error=error, webhook=webhook
        )[0]

    def complete(
        self,
        submission: Submission,
        verdict: Verdict,
        *,
        failed: bool = False,
        packages: dict[str, str] | None = None,
        error: str | None = None,
        webhook: bool = False,
        only_if: Callable[[Submission], bool] | None = None,
        count: str | None = None,
    ) -> tuple[Submission, bool]:
        """Record the verdict unless the stored record is final; the record and whether written.

        One transaction stores, counts, unindexes and announces it (the message is the record).
        If the stored record is already final (a repeat after a lost reply, a redelivery, an
        attempt that finished first) nothing is written or counted: it is announced again and
        returned. ``only_if`` can refuse the stored record (returned as it is); ``webhook`` puts
        a submission with a callback URL in the webhook outbox; ``count`` bumps one more counter.
        """
        submission.status = SubmissionStatus.FAILED if failed else SubmissionStatus.DONE
        submission.verdict = verdict
        submission.finished_at = now()
        submission.updated_at = submission.finished_at
        submission.error = error
        if packages is not None:
            submission.environment_packages = packages
        body = submission.model_dump_json()
        latency = (submission.finished_at - submission.created_at).total_seconds()
        key, channel = f"{SUBMISSION}{submission.id}", f"{DONE_CHANNEL}{submission.id}"

        def attempt(pipe: Pipeline) -> tuple[Submission, bool]:
            raw = pipe.get(key)
            stored = Submission.model_validate_json(raw) if raw else None
            if stored is not None and stored.status in FINAL:
                pipe.multi()
                _index(pipe, stored)
                pipe.publish(channel, stored.model_dump_json())
                return stored, False
            if stored is not None and only_if is not None and not only_if(stored):
                return stored, False
            pipe.multi()
            pipe.set(key, body, ex=self._retention)
            _index(pipe, submission)
            for name in (f"verdict:{verdict.status.value}", count):
                if name is not None:
                    pipe.hincrby(STATS, name, 1)
            if verdict.status is VerdictStatus.SANDBOX_ERROR:
                pipe.hincrby(STATS, "sandbox_failures", 1)
            for bound in LATENCY_BUCKETS:
                if latency <= bound:
                    pipe.hincrby(LATENCY, f"le:{bound}", 1)
            pipe.hincrby(LATENCY, "count", 1)
            pipe.hincrbyfloat(LATENCY, "sum", latency)
            if webhook and submission.callback_url:
                pipe.zadd(WEBHOOK_OUTBOX, {submission.id: time.time()})
            pipe.publish(channel, body)
            return submission, True

        return self._atomically(key, attempt, f"cannot record the result of {submission.id}")

    def _atomically(self, key: str, attempt: Callable[[Pipeline], T], failure: str) -> T:
        """Run ``attempt`` under WATCH of ``key`` until its MULTI goes through unraced."""
        run = cast(Callable[[Pipeline], None], attempt)  # redis-py types it as returning None
        try:
            return cast(T, self._redis.transaction(run, key, value_from_callable=True))
        except redis.RedisError as exc:
            raise StoreError(f"{failure}: {exc}") from None

    # the index of unfinished submissions, for the sweepers -----------------------------------

    def stale(self, *, queued_before: float, running_before: float, limit: int) -> list[str]:
        """Ids of submissions queued, or started, before these times (epoch seconds), oldest
        first, at most ``limit`` of each."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrangebyscore(QUEUED, "-inf", queued_before, start=0, num=limit)
            pipe.zrangebyscore(RUNNING, "-inf", running_before, start=0, num=limit)
            queued, running = pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"cannot read the index of unfinished submissions: {exc}") from None
        return [text(i) for i in [*queued, *running]]

    def orphans(self) -> list[str]:
        """Ids of running submissions whose worker process is gone (its heartbeat expired)."""
        try:
            runners = {text(k): text(v) for k, v in self._redis.hgetall(RUNNERS).items()}
            workers = sorted(set(runners.values()))
            pipe = self._redis.pipeline(transaction=False)
            for worker in workers:
                pipe.exists(f"{HEARTBEAT}{worker}")
            gone = {w for w, alive in zip(workers, pipe.execute(), strict=True) if not alive}
        except redis.RedisError as exc:
            raise StoreError(f"cannot read who runs what: {exc}") from None
        return [sid for sid, worker in runners.items() if worker in gone]

    def forget(self, submission_id: str) -> None:
        """Take a final or vanished submission out of the index of unfinished ones."""
        try:
            pipe = self._redis.pipeline()
            pipe.zrem(QUEUED, submission_id)
            pipe.zrem(RUNNING, submission_id)
            pipe.hdel(RUNNERS, submission_id)
            pipe.zrem(RUN_OUTBOX, submission_id)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"cannot unindex submission {submission_id}: {exc}") from None

    def run_unsent(self, submission_id: str) -> bool:
        """Whether this submission's run task is not known to be sent (in the outbox of runs)."""
        try:
            return self._redis.zscore(RUN_OUTBOX, submission_id) is not None
        except redis.RedisError as exc:
            raise StoreError(f"cannot read the outbox of runs: {exc}") from None

    def runs_due(self, before: float, limit: int, at: float | None = None) -> list[str]:
        """Claim up to ``limit`` entries of the outbox of runs stored (or last claimed) before
        ``before``: each is re-scored to ``at`` (now), so no other claimer takes it until due
        again."""
        claimed = time.time() if at is None else at
        try:
            due = self._claim_due(keys=[RUN_OUTBOX], args=[before, claimed, limit])
        except redis.RedisError as exc:
            raise StoreError(f"cannot read the outbox of runs: {exc}") from None
        return [text(i) for i in cast(list[bytes], due)]

    def run_queued(self, submission_id: str, *, count: str | None = None) -> None:
        """The run task of this submission is sent: out of the outbox of runs; ``count`` names
        a counter bumped with it."""
        try:
            pipe = self._redis.pipeline()
            pipe.zrem(RUN_OUTBOX, submission_id)
            if count is not None:
                pipe.hincrby(STATS, count, 1)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"cannot update the outbox of runs: {exc}") from None

    def webhooks_due(self, before: float, limit: int) -> list[str]:
        """Claim up to ``limit`` webhooks of the outbox due since ``before``: each is re-scored
        to now, so no other claimer takes it until it is due again."""
        try:
            due = self._claim_due(keys=[WEBHOOK_OUTBOX], args=[before, time.time(), limit])
        except redis.RedisError as exc:
            raise StoreError(f"cannot read the webhook outbox: {exc}") from None
        return [text(i) for i in cast(list[bytes], due)]

    def webhook_queued(self, submission_id: str) -> None:
        """The webhook of this submission is queued: out of the outbox."""
        try:
            self._redis.zrem(WEBHOOK_OUTBOX, submission_id)
        except redis.RedisError as exc:
            raise StoreError(f"cannot update the webhook outbox: {exc}") from None


def _index(
    pipe: Pipeline, submission: Submission, worker: str | None = None, *, unsent: bool = False
) -> None:
    """Keep the record's place in the index of unfinished submissions in step with its status.

    Only a queued record waits in the outbox of runs: a started attempt or a final record
    proves its task was delivered, or that none is needed.
    """
    sid, status = submission.id, submission.status
    if status is SubmissionStatus.QUEUED:
        pipe.zadd(QUEUED, {sid: submission.updated_at.timestamp()})
        if unsent:
            pipe.zadd(RUN_OUTBOX, {sid: submission.updated_at.timestamp()})
    else:
        pipe.zrem(QUEUED, sid)
        pipe.zrem(RUN_OUTBOX, sid)
    if status is SubmissionStatus.RUNNING:
        started = submission.started_at or submission.updated_at
        pipe.zadd(RUNNING, {sid: started.timestamp()})
    else:
        pipe.zrem(RUNNING, sid)
    if status is SubmissionStatus.RUNNING and worker is not None:
        pipe.hset(RUNNERS, sid, worker)
    else:
        pipe.hdel(RUNNERS, sid)
