"""The soak's books: what each submission should end as, what it did, and the totals.

Pure functions over plain data, so the rules that decide "lost", "duplicated", "wrong" and
"stuck" are unit-tested apart from the services (``tests/bench/test_soak_accounting.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

FINAL = frozenset({"done", "failed"})
UNFINISHED = frozenset({"queued", "running"})


class Fate(StrEnum):
    """What became of one accepted submission (exactly one each)."""

    GRADED = "graded"
    """Final, with the verdict it was expected to get."""
    WRONG = "wrong"
    """Final, with another verdict (a ``sandbox_error`` included: we could not grade it)."""
    LOST = "lost"
    """Accepted (a 2xx), then not found: 404, or no record in Redis."""
    STUCK = "stuck"
    """Still queued or running when the soak stopped waiting."""


@dataclass
class Planned:
    """One submission of the mix: its body, its idempotency key and the verdict it must get."""

    key: str
    """The ``Idempotency-Key`` of every POST of this submission (also in its metadata)."""
    kind: str
    """right, wrong, time-limit, memory-bomb or hostile."""
    label: str
    """Which snippet of the mix, for the report (``hostile/fake-report`` ...)."""
    challenge_id: str
    expected: str
    """The verdict status it must end with (``passed``, ``failed``, ``time_limit_exceeded``...)."""
    code: str | None = None
    choice: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"challenge_id": self.challenge_id, "metadata": {"soak": self.key}}
        if self.code is not None:
            body["code"] = self.code
        if self.choice is not None:
            body["choice"] = self.choice
        return body


@dataclass
class Tracked:
    """What the client saw of one planned submission."""

    planned: Planned
    ids: set[str] = field(default_factory=set)
    """Every submission id a 2xx POST answered with for this idempotency key."""
    final: dict[str, Any] | None = None
    """The last record read back (the API's JSON); None if never read."""
    missing: bool = False
    """The last read answered 404."""
    refused: str | None = None
    """Why the API refused it for good (a 4xx): a mistake of the mix, never accepted."""

    @property
    def accepted(self) -> bool:
        return bool(self.ids)


def verdict_status(record: Mapping[str, Any]) -> str | None:
    result = record.get("result")
    if not isinstance(result, Mapping):
        return None
    status = result.get("status")
    return status if isinstance(status, str) else None


def fate(tracked: Tracked) -> Fate | None:
    """The fate of one submission; None if it was never accepted (nothing to account for)."""
    if not tracked.accepted:
        return None
    if tracked.missing or tracked.final is None:
        return Fate.LOST
    status = tracked.final.get("status")
    if status in UNFINISHED:
        return Fate.STUCK
    if status in FINAL and verdict_status(tracked.final) == tracked.planned.expected:
        return Fate.GRADED
    return Fate.WRONG


def verdicts_written_twice(stats: Mapping[str, str], final_records: int) -> int:
    """Verdict writes beyond one per final record. The store counts each write it makes in
    ``grader:stats`` (``verdict:<status>``, in the same transaction as the record), so a
    verdict stored twice leaves more writes than final records."""
    written = sum(int(v) for k, v in stats.items() if k.startswith("verdict:"))
    return max(0, written - final_records)


def duplicates(tracked: Tracked, stored_ids: Iterable[str] = ()) -> int:
    """Submissions beyond the first for one idempotency key: ids the POSTs answered with,
    united with ids found in the store carrying this key in their metadata."""
    return max(0, len(tracked.ids | set(stored_ids)) - 1)


@dataclass
class Summary:
    """The figures of one soak: every one but ``accepted`` and ``graded`` must be 0."""

    planned: int = 0
    refused: int = 0
    """Planned but answered with a 4xx: not accepted, so not counted below (should be 0)."""
    accepted: int = 0
    graded: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    stuck: int = 0
    extra_verdicts: int = 0
    """Verdict writes counted by the store beyond one per final submission (stored twice)."""
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    """Every submission that was not simply graded: key, label, fate, what was seen."""

    @property
    def ok(self) -> bool:
        return self.lost == self.duplicated == self.wrong == self.stuck == 0

    def figures(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "graded": self.graded,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "wrongly graded": self.wrong,
            "stuck": self.stuck,
        }


def summarize(
    tracked: Iterable[Tracked],
    stored: Mapping[str, Iterable[str]] | None = None,
    extra_verdicts: int = 0,
) -> Summary:
    """Tally every submission. ``stored`` maps an idempotency key to the ids of the records in
    the store carrying it; ``extra_verdicts`` is what ``verdicts_written_twice`` found."""
    summary = Summary()
    kinds: dict[str, Counter[str]] = {}
    for item in tracked:
        summary.planned += 1
        per_kind = kinds.setdefault(item.planned.kind, Counter())
        per_kind["planned"] += 1
        found = fate(item)
        if found is None:
            summary.refused += item.refused is not None
            continue
        summary.accepted += 1
        per_kind["accepted"] += 1
        per_kind[found.value] += 1
        extra = duplicates(item, (stored or {}).get(item.planned.key, ()))
        summary.duplicated += extra
        if found is Fate.GRADED:
            summary.graded += 1
        elif found is Fate.WRONG:
            summary.wrong += 1
        elif found is Fate.LOST:
            summary.lost += 1
        else:
            summary.stuck += 1
        if found is not Fate.GRADED or extra:
            summary.problems.append(_problem(item, found, extra))
    summary.extra_verdicts = extra_verdicts
    summary.duplicated += extra_verdicts
    summary.by_kind = {kind: dict(counts) for kind, counts in sorted(kinds.items())}
    return summary


def _problem(item: Tracked, found: Fate, extra: int) -> dict[str, Any]:
    record = item.final or {}
    result = record.get("result") if isinstance(record.get("result"), Mapping) else {}
    return {
        "key": item.planned.key,
        "label": item.planned.label,
        "fate": found.value,
        "duplicates": extra,
        "ids": sorted(item.ids),
        "expected": item.planned.expected,
        "status": record.get("status"),
        "verdict": verdict_status(record),
        "reason": (result or {}).get("reason"),
        "error": record.get("error"),
        "attempts": record.get("attempts"),
    }
