"""The gradebook's reading of Redis: submissions in creation order, one page at a time.

Every submission is indexed at creation (``store.create``) in ``BOOK`` and in its key's
``BOOK_OF_KEY``, scored by its creation time; entries older than the retention period are
trimmed on each write, and an entry whose record has expired is skipped. A page is read in
chunks, filtered by a predicate, and ends with a cursor (the last entry looked at), so a
filter that matches little still answers after a bounded amount of work.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import redis

from ..domain.submission import Submission
from ..errors import StoreError
from .cluster import text
from .redis_keys import BOOK, BOOK_OF_KEY, SUBMISSION

CHUNK = 200


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the creation score and the id of the last entry looked at."""

    score: float
    submission_id: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.score!r}:{self.submission_id}".encode()).decode()

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            score, _, sid = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
            return cls(float(score), sid)
        except (ValueError, UnicodeError):
            raise ValueError("not a cursor this API gave out") from None


@dataclass(frozen=True)
class Page:
    submissions: list[Submission]
    cursor: Cursor | None
    """Where the next page starts; None at the end."""


class Book:
    """Reads the gradebook's indexes; every Redis error becomes ``StoreError``."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def page(
        self,
        key_id: str | None,
        keep: Callable[[Submission], bool],
        *,
        since: datetime | None = None,
        after: Cursor | None = None,
        limit: int = 100,
        scan: int = 5000,
    ) -> Page:
        """Up to ``limit`` submissions ``keep`` accepts, oldest first, created at or after
        ``since`` and after ``after``; of one key (``key_id``) or of all (None). At most
        ``scan`` entries are looked at: a page may be short and still have a cursor."""
        found: list[Submission] = []
        for looked, (cursor, submission) in enumerate(self._entries(key_id, since, after), 1):
            if submission is not None and keep(submission):
                found.append(submission)
                if len(found) == limit:
                    return Page(found, cursor)
            if looked >= scan:
                return Page(found, cursor)
        return Page(found, None)

    def _entries(
        self, key_id: str | None, since: datetime | None, after: Cursor | None
    ) -> Iterator[tuple[Cursor, Submission | None]]:
        index = BOOK if key_id is None else f"{BOOK_OF_KEY}{key_id}"
        low = after.score if after is not None else (since.timestamp() if since else "-inf")
        offset = 0
        while True:
            try:
                chunk = cast(
                    list[tuple[bytes, float]],
                    self._redis.zrangebyscore(
                        index, low, "+inf", start=offset, num=CHUNK, withscores=True
                    ),
                )
                keys = [f"{SUBMISSION}{text(member)}" for member, _ in chunk]
                records = self._redis.mget(keys) if keys else []
            except redis.RedisError as exc:
                raise StoreError(f"cannot read the gradebook: {exc}") from None
            for (member, score), raw in zip(chunk, records, strict=True):
                cursor = Cursor(float(score), text(member))
                if after is not None and (cursor.score, cursor.submission_id) <= (
                    after.score,
                    after.submission_id,
                ):
                    continue
                yield cursor, Submission.model_validate_json(raw) if raw else None
            if len(chunk) < CHUNK:
                return
            offset += len(chunk)
