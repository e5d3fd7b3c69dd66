"""Reuse mode on the worker's side: which used containers wait for which runs, and which go.

Strict mode (``off``) never gets here. In ``same-key`` and ``any`` modes a container that ran a
submission may take another, of the same environment, pre-import profile, fixed limits and
tenant (the API key id in ``same-key``, ``*`` in ``any``), but only when all of these hold:
the run ended plainly (an exit, no limit hit, a valid child report or a syntax error), the
container is under its run and age limits, and its supervisor then restored it and said so
in a verified ``ready`` line (``grader_harness/restore.py``). Anything else removes it.

The learner's container of an isolated run (hidden tests) is never reused. Its judge
container, which never runs the learner's code, is, by default and whatever the mode: on a
shelf of its own (``judge_settings``), for the same hidden-test suite only (``suite_of``);
see docs/security.md, "Reused judges".
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import structlog

from ..domain import ChildReportStatus, Limits, Observation, RunRequest, RunStatus
from ..errors import GraderError, HarnessProtocolError
from ..settings import ReuseMode, ReuseSettings
from .containers import fixed_limits
from .protocol import ReadyEvent, parse_line
from .ready import ReadyContainer

log = structlog.get_logger(__name__)
ANYONE = "*"
"""The tenant of every run in ``any`` mode."""
RESTORE_TIMEOUT = 5.0
"""Seconds a supervisor may take to restore and verify its container after a run."""
PENDING_WAIT = 0.5
"""Seconds a run waits for a container of its own still being restored, before it takes
another (a fresh one from the pool, or a cold start)."""
_PLAIN = (RunStatus.COMPLETED, RunStatus.SYNTAX_ERROR)

ShelfKey = tuple[Hashable, str]
"""A pool key (environment, profile) and a tenant."""


class Shelf:
    """Used containers, restored and verified, waiting for their tenant's next run."""

    def __init__(
        self,
        settings: ReuseSettings,
        destroy: Callable[[ReadyContainer], None],
        *,
        max_idle: int | None = None,
    ) -> None:
        self.settings = settings
        self._max_idle = max_idle
        """Used containers kept waiting in all, whatever their tenant (None: no bound)."""
        self._destroy = destroy
        self._idle: dict[ShelfKey, deque[ReadyContainer]] = {}
        self._pending: dict[ShelfKey, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._recycler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-recycle")
        self.recycled = 0
        self.discarded: dict[str, int] = {}
        """Why containers were discarded after a run, counted (diagnostics and tests)."""

    @property
    def enabled(self) -> bool:
        return self.settings.mode is not ReuseMode.OFF

    def tenant_of(self, request: RunRequest) -> str | None:
        """Whose containers ``request`` may run in; None when it runs in a fresh one only."""
        if request.learner is not None:  # isolated: the judge and the learner, never reused
            return None
        if request.stdin or request.cases:  # forked by the supervisor itself: never reused
            return None
        if self.settings.mode is ReuseMode.ANY:
            return ANYONE
        if self.settings.mode is ReuseMode.SAME_KEY:
            return request.tenant  # no key, no reuse
        return None

    def take(self, key: Hashable, tenant: str, limits: Limits) -> ReadyContainer | None:
        """A used container of ``tenant`` for ``key`` whose fixed limits match, or None."""
        shelf_key = (key, tenant)
        stale: list[ReadyContainer] = []
        found: ReadyContainer | None = None
        deadline = time.monotonic() + PENDING_WAIT
        with self._cond:
            while True:
                idle = self._idle.get(shelf_key)
                while idle and found is None:
                    ready = idle.pop()
                    if self._usable(ready, limits):
                        found = ready
                    else:
                        stale.append(ready)
                remaining = deadline - time.monotonic()
                if found is not None or not self._pending.get(shelf_key) or remaining <= 0:
                    break
                self._cond.wait(remaining)
        for ready in stale:
            self._discard(ready, "expired or other limits")
        return found

    def after_run(self, ready: ReadyContainer, observation: Observation, tenant: str) -> None:
        """Keep ``ready`` for ``tenant`` once its supervisor verified the restore, else remove it.

        The observation is already the caller's: this only decides the container's fate, in
        the background.
        """
        reason = self.discard_reason(ready, observation)
        if reason is not None:
            self._discard(ready, reason)
            return
        shelf_key = (_pool_key(ready), tenant)
        with self._cond:
            self._pending[shelf_key] = self._pending.get(shelf_key, 0) + 1
        try:
            self._recycler.submit(self._recycle, ready, tenant, shelf_key)
        except RuntimeError:  # shut down meanwhile
            self._settle(shelf_key)
            self._discard(ready, "closing")

    def discard_reason(self, ready: ReadyContainer, observation: Observation) -> str | None:
        """Why ``ready`` must not take another run after ``observation``; None if it may."""
        if not ready.reuse:
            return "not started for reuse"
        if observation.status not in _PLAIN:
            return f"status {observation.status.value}"
        if observation.timed_out or observation.output_limit_exceeded or observation.oom_killed:
            return "a limit was hit"
        if observation.signal is not None or observation.exit_code is None:
            return "not a plain exit"
        if (
            observation.status is RunStatus.COMPLETED
            and observation.child_report is not ChildReportStatus.OK
        ):
            return f"child report {observation.child_report.value}"
        if ready.stream.overflow or ready.stream.eof:
            return "attach stream over its cap or closed"
        if ready.runs + 1 >= self.settings.max_runs:
            return "max runs"
        if ready.age >= self.settings.max_age_seconds:
            return "max age"
        return None

    def idle_count(self) -> int:
        with self._cond:
            return self._idle_total()

    def idle_ids(self) -> set[str]:
        """The ids of the used containers waiting for a run (tests, diagnostics)."""
        with self._cond:
            return {ready.container_id for queue in self._idle.values() for ready in queue}

    def wait_settled(self, timeout: float = 10.0) -> bool:
        """Block until no restore is pending (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(self._pending.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        """Stop recycling and remove every container waiting."""
        with self._cond:
            self._closed = True
        self._recycler.shutdown(wait=True)
        with self._cond:
            leftovers = [ready for queue in self._idle.values() for ready in queue]
            self._idle.clear()
            self._cond.notify_all()
        for ready in leftovers:
            self._discard(ready, "closing")

    # background ---------------------------------------------------------------------------

    def _recycle(self, ready: ReadyContainer, tenant: str, shelf_key: ShelfKey) -> None:
        try:
            problem = self._read_restored(ready)
        except Exception as exc:  # never lose the thread; the container just goes
            problem = f"{type(exc).__name__}: {exc}"
        evicted: list[ReadyContainer] = []
        with self._cond:
            if problem is None and self._closed:
                problem = "closing"
            if problem is None:
                ready.runs += 1
                ready.tenant = tenant
                ready.shelved = time.monotonic()
                queue = self._idle.setdefault(shelf_key, deque())
                queue.append(ready)
                while len(queue) > self.settings.idle_per_key:
                    evicted.append(queue.popleft())
                evicted += self._over_max_idle()
                self.recycled += 1
        try:
            if problem is not None:
                self._discard(ready, problem)
            for old in evicted:
                self._discard(old, "more idle containers than idle_per_key or max_idle")
        finally:
            self._settle(shelf_key)  # settled once its removal, if any, is under way

    def _read_restored(self, ready: ReadyContainer) -> str | None:
        """Read the supervisor's line after its restore; None when it verified a clean state."""
        line = ready.stream.read_keyed(time.monotonic() + RESTORE_TIMEOUT)
        if line is None:
            return "no ready line after the run"
        try:
            event: ReadyEvent = parse_line(line, ReadyEvent)
        except HarnessProtocolError as exc:
            return str(exc)
        if ready.stream.foreign_lines:  # nothing but the supervisor may write between runs
            return f"{ready.stream.foreign_lines} foreign line(s) on the report channel"
        if not event.reuse or event.runs != ready.runs + 1:
            return f"unexpected ready line (runs {event.runs}, expected {ready.runs + 1})"
        if event.verified is not True or event.problems:
            return "restore not verified: " + "; ".join(event.problems)[:500]
        return None

    def _over_max_idle(self) -> list[ReadyContainer]:
        """Take the longest-waiting containers off the shelf while there are too many."""
        over: list[ReadyContainer] = []
        while self._max_idle is not None and self._idle_total() > self._max_idle:
            queue = min((q for q in self._idle.values() if q), key=lambda q: q[0].shelved)
            over.append(queue.popleft())
        return over

    def _idle_total(self) -> int:
        return sum(len(queue) for queue in self._idle.values())

    def _settle(self, shelf_key: ShelfKey) -> None:
        with self._cond:
            self._pending[shelf_key] -= 1
            self._cond.notify_all()

    def _usable(self, ready: ReadyContainer, limits: Limits) -> bool:
        return (
            fixed_limits(ready.limits) == fixed_limits(limits)
            and ready.age < self.settings.max_age_seconds
            and ready.runs < self.settings.max_runs
            and ready.expires > time.time() + limits.wall_seconds + 10
        )

    def _discard(self, ready: ReadyContainer, reason: str) -> None:
        with self._cond:
            label = reason.split(":", maxsplit=1)[0][:60]
            self.discarded[label] = self.discarded.get(label, 0) + 1
        log.info("sandbox_discarded", container_id=ready.container_id, reason=reason[:300])
        with suppress(GraderError):
            self._destroy(ready)


GVISOR_RUNTIME = "runsc"


def judge_settings(settings: ReuseSettings, runtime: str | None = None) -> ReuseSettings:
    """The shelf of judge containers: every judge of one suite is its tenant (``suite_of``).

    Never under gVisor: there a same-uid child can write into PID 1's stdout (docs/security.md,
    "gVisor"), so a compromised judge child could forge the ``ready`` line of a restore.
    """
    reused = settings.judges and runtime != GVISOR_RUNTIME
    return settings.model_copy(update={"mode": ReuseMode.ANY if reused else ReuseMode.OFF})


def judge_shelf(
    settings: ReuseSettings, runtime: str | None, destroy: Callable[[ReadyContainer], None]
) -> Shelf:
    """The used judges of one sandbox: per suite, at most ``judges_idle`` in all."""
    return Shelf(judge_settings(settings, runtime), destroy, max_idle=settings.judges_idle)


def suite_of(judge_line: bytes) -> str:
    """The tenant of a judge container: its hidden-test suite, as what the judge is sent.

    A judge serves again only the same files, modules and options (limits aside), so whatever
    one run could leave in it meets only the same tests.
    """
    submission = json.loads(judge_line)
    submission.pop("limits", None)
    canonical = json.dumps(submission, sort_keys=True, separators=(",", ":"))
    return "suite:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _pool_key(ready: ReadyContainer) -> Hashable:
    return (ready.image.environment, ready.profile)
