"""The challenge bank in Redis: every process of the service sees the same challenges.

Revisions are stored by content hash and kept; a challenge's record names its latest upload
(``head``) and what learners can submit to (``published``). Every change of what is published
bumps one counter in the same transaction, so ``PublishedChallenges`` (each process's cached
view) is current after one ``GET`` of it. The bundled challenges are put into an empty bank by
the first process that starts, in one transaction: a process that starts at the same time sees
the whole set or waits for it, never half of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import TypeVar, cast

import redis
from redis.client import Pipeline

from ..domain.bank import (
    ChallengeRecord,
    RegradeJob,
    Revision,
    RevisionStatus,
    Source,
    revision_of,
)
from ..domain.challenge import Challenge
from ..domain.submission import now
from ..domain.validation import ChallengeReport, MatrixRow
from ..errors import Conflict, NotFound, StoreError
from .cluster import text
from .redis_keys import (
    BANK_CHALLENGE,
    BANK_PUBLISHED,
    BANK_REGRADE,
    BANK_REVISION,
    BANK_SEEDED,
    BANK_SUBMISSIONS,
    BANK_VALIDATING,
    BANK_VERSION,
)

T = TypeVar("T")


class ChallengeBank:
    """Reads and writes the bank; every Redis error becomes ``StoreError``."""

    def __init__(self, client: redis.Redis, retention_seconds: int) -> None:
        self._redis = client
        self._retention = retention_seconds

    # reading ---------------------------------------------------------------------------------

    def revision(self, revision: str) -> Revision | None:
        raw = self._call(lambda: self._redis.get(f"{BANK_REVISION}{revision}"), "read a revision")
        return Revision.model_validate_json(raw) if raw else None

    def records(self) -> list[ChallengeRecord]:
        """Every challenge in the bank, retired ones too, by id (for the console)."""

        def read() -> list[bytes | None]:
            keys = sorted(self._redis.scan_iter(match=f"{BANK_CHALLENGE}*", count=1000))
            return cast("list[bytes | None]", self._redis.mget(keys)) if keys else []

        raws = self._call(read, "list the bank")
        return [ChallengeRecord.model_validate_json(raw) for raw in raws if raw]

    def record(self, challenge_id: str) -> ChallengeRecord | None:
        key = f"{BANK_CHALLENGE}{challenge_id}"
        raw = self._call(lambda: self._redis.get(key), "read a challenge")
        return ChallengeRecord.model_validate_json(raw) if raw else None

    def published(self) -> tuple[int, dict[str, str]]:
        """The version of what is published, and each published challenge's revision."""

        def read() -> tuple[int, dict[str, str]]:
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(BANK_VERSION)
            pipe.hgetall(BANK_PUBLISHED)
            version, mapping = pipe.execute()
            return int(version or 0), {text(k): text(v) for k, v in mapping.items()}

        return self._call(read, "read the published challenges")

    def version(self) -> int:
        return int(self._call(lambda: self._redis.get(BANK_VERSION), "read the bank") or 0)

    # writing ---------------------------------------------------------------------------------

    def seed(self, challenges: Iterable[Challenge]) -> bool:
        """Publish the bundled challenges if the bank was never seeded; True if this call did.

        One transaction, conditional on the seeded mark: of processes starting together one
        writes, the others find the mark (after it, the whole set) and write nothing.
        """
        bundled = list(challenges)

        def attempt(pipe: Pipeline) -> bool:
            if pipe.exists(BANK_SEEDED):
                return False
            pipe.multi()
            pipe.set(BANK_SEEDED, now().isoformat())
            for challenge in bundled:
                rev = revision_of(challenge)
                doc = Revision(
                    revision=rev,
                    challenge=challenge,
                    status=RevisionStatus.PUBLISHED,
                    source=Source.BUNDLED,
                )
                record = ChallengeRecord(
                    id=challenge.qualified_id, head=rev, published=rev, revisions=[rev]
                )
                pipe.set(f"{BANK_REVISION}{rev}", doc.model_dump_json())
                pipe.set(f"{BANK_CHALLENGE}{challenge.qualified_id}", record.model_dump_json())
                pipe.hset(BANK_PUBLISHED, challenge.qualified_id, rev)
            pipe.incr(BANK_VERSION)
            return True

        return self._atomically([BANK_SEEDED], attempt, "seed the bank")

    def upload(
        self, challenge: Challenge, *, uploaded_by: str | None, create: bool = False
    ) -> tuple[Revision, bool]:
        """Store ``challenge`` as its challenge's latest revision; the revision and whether it
        is new (False: its head already had exactly this content).

        A revision seen before keeps its validation: back to a published one republishes it.
        ``create`` refuses a challenge that exists and is not retired (``Conflict``).
        """
        qid, rev = challenge.qualified_id, revision_of(challenge)
        record_key, doc_key = f"{BANK_CHALLENGE}{qid}", f"{BANK_REVISION}{rev}"

        def attempt(pipe: Pipeline) -> tuple[Revision, bool]:
            raw_record, raw_doc = pipe.get(record_key), pipe.get(doc_key)
            record = ChallengeRecord.model_validate_json(raw_record) if raw_record else None
            if create and record is not None and not record.retired:
                raise Conflict(f"challenge {qid!r} exists; PUT /v1/challenges/{qid} replaces it")
            doc = Revision.model_validate_json(raw_doc) if raw_doc else None
            same = record is not None and record.head == rev and not record.retired
            if same and doc is not None and doc.status is not RevisionStatus.ERROR:
                return doc, False
            if doc is None or doc.status is RevisionStatus.ERROR:
                doc = Revision(
                    revision=rev,
                    challenge=challenge,
                    status=RevisionStatus.VALIDATING,
                    uploaded_by=uploaded_by,
                )
            record = record or ChallengeRecord(id=qid, head=rev)
            history = [r for r in record.revisions if r != rev]
            record = record.model_copy(
                update={"head": rev, "retired": False, "revisions": [*history, rev]}
            )
            pipe.multi()
            pipe.set(doc_key, doc.model_dump_json())
            if doc.status is RevisionStatus.VALIDATING:
                pipe.zadd(BANK_VALIDATING, {rev: time.time()})
            if doc.status is RevisionStatus.PUBLISHED:
                record = record.model_copy(update={"published": rev})
                pipe.hset(BANK_PUBLISHED, qid, rev)
                pipe.incr(BANK_VERSION)
            pipe.set(record_key, record.model_dump_json())
            return doc, True

        return self._atomically([record_key, doc_key], attempt, f"store {qid}")

    def record_validation(
        self,
        revision: str,
        report: ChallengeReport | None,
        matrix: MatrixRow | None,
        *,
        error: str | None = None,
    ) -> Revision | None:
        """Record a validation's outcome; a passing revision that is still its challenge's
        latest upload is published. A revision already decided is returned as it is."""
        doc_key = f"{BANK_REVISION}{revision}"

        def attempt(pipe: Pipeline) -> Revision | None:
            raw = pipe.get(doc_key)
            doc = Revision.model_validate_json(raw) if raw else None
            if doc is None or doc.status is not RevisionStatus.VALIDATING:
                pipe.multi()
                pipe.zrem(BANK_VALIDATING, revision)
                return doc
            record_key = f"{BANK_CHALLENGE}{doc.qualified_id}"
            pipe.watch(record_key)  # type: ignore[no-untyped-call]
            raw_record = pipe.get(record_key)
            record = ChallengeRecord.model_validate_json(raw_record) if raw_record else None
            if error is not None:
                status = RevisionStatus.ERROR
            else:
                ok = report is not None and report.ok
                status = RevisionStatus.PUBLISHED if ok else RevisionStatus.REJECTED
            decided = doc.model_copy(
                update={
                    "status": status,
                    "report": report,
                    "matrix": matrix,
                    "error": error,
                    "validated_at": now(),
                }
            )
            pipe.multi()
            pipe.set(doc_key, decided.model_dump_json())
            pipe.zrem(BANK_VALIDATING, revision)
            live = record is not None and record.head == revision and not record.retired
            if status is RevisionStatus.PUBLISHED and live and record is not None:
                published = record.model_copy(update={"published": revision})
                pipe.set(record_key, published.model_dump_json())
                pipe.hset(BANK_PUBLISHED, doc.qualified_id, revision)
                pipe.incr(BANK_VERSION)
            return decided

        return self._atomically([doc_key], attempt, f"record the validation of {revision}")

    def retire(self, challenge_id: str) -> ChallengeRecord:
        """Learners can no longer submit to it; every revision stays, for its submissions."""
        record_key = f"{BANK_CHALLENGE}{challenge_id}"

        def attempt(pipe: Pipeline) -> ChallengeRecord:
            raw = pipe.get(record_key)
            if not raw:
                raise NotFound(f"no challenge {challenge_id!r}")
            record = ChallengeRecord.model_validate_json(raw)
            retired = record.model_copy(update={"retired": True, "published": None})
            pipe.multi()
            pipe.set(record_key, retired.model_dump_json())
            pipe.hdel(BANK_PUBLISHED, challenge_id)
            pipe.incr(BANK_VERSION)
            return retired

        return self._atomically([record_key], attempt, f"retire {challenge_id}")

    def validations_due(self, before: float, limit: int, at: float | None = None) -> list[str]:
        """Claim up to ``limit`` revisions validating since before ``before`` (epoch seconds):
        each is re-scored to ``at`` (now), so no other sweeper re-sends it until due again."""
        claimed = time.time() if at is None else at

        def attempt(pipe: Pipeline) -> list[str]:
            found = pipe.zrangebyscore(BANK_VALIDATING, "-inf", before, 0, limit)
            due = [text(r) for r in cast(list[bytes], found)]
            pipe.multi()
            if due:
                pipe.zadd(BANK_VALIDATING, dict.fromkeys(due, claimed))
            return due

        return self._atomically([BANK_VALIDATING], attempt, "read the validations due")

    # submissions and regrades ----------------------------------------------------------------

    def submissions_of(self, challenge_id: str, limit: int) -> list[str]:
        """The newest ``limit`` submission ids of a challenge, oldest first."""
        key = f"{BANK_SUBMISSIONS}{challenge_id}"
        ids = self._call(lambda: self._redis.zrange(key, -limit, -1), "read submissions")
        return [text(i) for i in cast(list[bytes], ids)]

    def forget_submissions(self, challenge_id: str, ids: list[str]) -> None:
        if ids:
            key = f"{BANK_SUBMISSIONS}{challenge_id}"
            self._call(lambda: self._redis.zrem(key, *ids), "drop expired submissions")

    def save_job(self, job: RegradeJob) -> None:
        key = f"{BANK_REGRADE}{job.id}"
        body = job.model_dump_json()
        self._call(lambda: self._redis.set(key, body, ex=self._retention), "store a regrade")

    def job(self, job_id: str) -> RegradeJob | None:
        raw = self._call(lambda: self._redis.get(f"{BANK_REGRADE}{job_id}"), "read a regrade")
        return RegradeJob.model_validate_json(raw) if raw else None

    # ---------------------------------------------------------------------------------------

    def _call(self, action: Callable[[], T], what: str) -> T:
        try:
            return action()
        except redis.RedisError as exc:
            raise StoreError(f"cannot {what}: {exc}") from None

    def _atomically(self, keys: list[str], attempt: Callable[[Pipeline], T], what: str) -> T:
        run = cast(Callable[[Pipeline], None], attempt)  # redis-py types it as returning None
        try:
            return cast(T, self._redis.transaction(run, *keys, value_from_callable=True))
        except redis.RedisError as exc:
            raise StoreError(f"cannot {what}: {exc}") from None


class PublishedChallenges(Mapping[str, Challenge]):
    """The published challenges by ``<set>/<id>``, as every process of the service sees them.

    A cache, current on every read: each read compares the bank's version counter with the one
    the cache was built at (one ``GET``), and rebuilds on a difference, reading only revisions
    it has not seen (revisions never change). On first use it seeds an empty bank with the
    bundled challenges. ``at`` reads any revision, published or not (a submission's own).
    """

    def __init__(self, bank: ChallengeBank, bundled: Iterable[Challenge] = ()) -> None:
        self.bank = bank
        self._bundled = list(bundled)
        self._seeded = False
        self._version: int | None = None
        self._items: dict[str, Challenge] = {}
        self._revisions: dict[str, str] = {}
        self._known: dict[str, Challenge] = {}
        self._lock = threading.Lock()

    def current(self) -> dict[str, Challenge]:
        """The published challenges now (a snapshot: the dict is replaced, never changed)."""
        with self._lock:
            if not self._seeded:
                self.bank.seed(self._bundled)
                self._seeded = True
            if self.bank.version() != self._version:
                self._refresh()
            return self._items

    def _refresh(self) -> None:
        version, mapping = self.bank.published()
        items: dict[str, Challenge] = {}
        for qid, rev in mapping.items():
            challenge = self._load(rev)
            if challenge is not None:
                items[qid] = challenge
        self._items, self._revisions, self._version = items, mapping, version

    def _load(self, revision: str) -> Challenge | None:
        known = self._known.get(revision)
        if known is None:
            doc = self.bank.revision(revision)
            if doc is None:
                return None
            known = self._known[revision] = doc.challenge
        return known

    def revision(self, challenge_id: str) -> str | None:
        """The published revision of a challenge, as of the last read."""
        self.current()
        return self._revisions.get(challenge_id)

    def at(self, revision: str) -> Challenge | None:
        """A revision's challenge, whatever its status (cached: revisions never change)."""
        with self._lock:
            return self._load(revision)

    def __getitem__(self, challenge_id: str) -> Challenge:
        return self.current()[challenge_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.current())

    def __len__(self) -> int:
        return len(self.current())

    def keys(self) -> KeysView[str]:
        return self.current().keys()

    def values(self) -> ValuesView[Challenge]:
        return self.current().values()

    def items(self) -> ItemsView[str, Challenge]:
        return self.current().items()


def challenge_for(
    challenges: Mapping[str, Challenge], challenge_id: str, revision: str | None
) -> Challenge | None:
    """The challenge a submission was admitted to: its recorded revision when the bank still
    has it (kept even if retired or superseded), else what is published now."""
    if revision is not None and isinstance(challenges, PublishedChallenges):
        found = challenges.at(revision)
        if found is not None and found.qualified_id == challenge_id:
            return found
    return challenges.get(challenge_id)
