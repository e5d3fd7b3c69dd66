"""The load and the faults: 16 clients over HTTP, workers and Redis killed along the way.

Every POST of a submission carries the same ``Idempotency-Key``, so a client retries until it
gets a 2xx whatever happened to the earlier tries (refused while Redis was down, or answered
into a closed connection): a retry can only return the first submission. A submission counts
as accepted at its first 2xx. Each client then long-polls it until it is final (or until its
patience runs out: the drain at the end picks it up), and takes the next one.

Faults happen at random moments, drawn as fractions of the submissions accepted so far (the
pace of a shared machine is unknown in advance): worker SIGKILLs, each worker restarted by
the supervisor, and Redis SIGKILLed, left down a few seconds, and started again on its
append-only file.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from grader.testing import SUBMITTER_KEY

from .accounting import FINAL, Planned, Tracked
from .services import Service

AUTH = {"Authorization": f"Bearer {SUBMITTER_KEY}"}
RETRYABLE = frozenset({429, 500, 502, 503, 504})
POLL_WAIT = 20
"""Seconds of one long-poll (the API caps it at 30)."""


@dataclass(frozen=True)
class Fault:
    """One planned fault: what, and after which fraction of the submissions was accepted."""

    kind: str
    """``worker`` (SIGKILL a whole worker), ``worker-child`` (SIGKILL one pool process),
    ``redis`` (SIGKILL redis-server, restart it)."""
    at: float


def fault_plan(
    rng: random.Random, *, worker_kills: int, child_kills: int, redis_kills: int
) -> list[Fault]:
    """Random moments for every fault, two Redis kills well apart, in order."""
    faults = [Fault("worker", rng.uniform(0.05, 0.92)) for _ in range(worker_kills)]
    faults += [Fault("worker-child", rng.uniform(0.05, 0.92)) for _ in range(child_kills)]
    span = 0.75 / max(redis_kills, 1)
    faults += [
        Fault("redis", 0.12 + span * i + rng.uniform(0, span * 0.6)) for i in range(redis_kills)
    ]
    return sorted(faults, key=lambda f: f.at)


@dataclass
class Progress:
    """Counters the progress display reads."""

    total: int
    accepted: int = 0
    final: int = 0
    posting: int = 0
    """POSTs in flight now (a Redis kill waits for one, to catch a request mid-way)."""
    post_retries: int = 0
    poll_retries: int = 0
    replays: int = 0
    """POSTs answered 200 with an earlier submission: a retry found what a failed try stored."""
    faults: list[dict[str, Any]] = field(default_factory=list)


class Soak:
    """Drive ``planned`` through ``service`` with ``concurrency`` clients while faults happen."""

    def __init__(
        self,
        service: Service,
        planned: list[Planned],
        faults: list[Fault],
        *,
        concurrency: int,
        patience: float,
        drain: float,
        rng: random.Random,
        say: Callable[[str], None],
    ) -> None:
        self.service = service
        self.tracked = [Tracked(p) for p in planned]
        self.faults = faults
        self.concurrency = concurrency
        self.patience = patience
        self.drain = drain
        self.rng = rng
        self.say = say
        self.progress = Progress(total=len(planned))
        self.started = time.monotonic()
        self.last_fault = self.started
        self.drain_deadline: float | None = None

    async def run(self) -> list[Tracked]:
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(
            base_url=self.service.base_url, headers=AUTH, timeout=40, limits=limits
        ) as client:
            todo: asyncio.Queue[Tracked] = asyncio.Queue()
            for item in self.tracked:
                todo.put_nowait(item)
            faults = asyncio.create_task(self._faults())
            clients = [
                asyncio.create_task(self._client(client, todo)) for _ in range(self.concurrency)
            ]
            await asyncio.gather(*clients)
            await faults
            self.drain_deadline = max(self.last_fault, time.monotonic()) + self.drain
            self.say(f"{self._clock()} all accepted; waiting up to {self.drain:.0f} s for the rest")
            await self._drain(client)
        return self.tracked

    # clients ------------------------------------------------------------------------------

    async def _client(self, client: httpx.AsyncClient, todo: asyncio.Queue[Tracked]) -> None:
        while True:
            try:
                item = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            if await self._submit(client, item):
                await self._follow(client, item, time.monotonic() + self.patience)

    async def _submit(self, client: httpx.AsyncClient, item: Tracked) -> bool:
        """POST until a 2xx (same Idempotency-Key every time); False if refused for good."""
        headers = {"Idempotency-Key": item.planned.key}
        delay = 0.5
        while True:
            self.progress.posting += 1
            try:
                response = await client.post(
                    "/v1/submissions", json=item.planned.body(), headers=headers
                )
            except httpx.HTTPError:
                response = None
            finally:
                self.progress.posting -= 1
            if response is not None and response.is_success:
                if response.status_code == 200 and delay > 0.5:
                    self.progress.replays += 1
                item.ids.add(response.json()["id"])
                self._saw(item, response.json())
                self.progress.accepted += 1
                return True
            if response is not None and response.status_code not in RETRYABLE:
                self.say(
                    f"[red]{item.planned.key} refused: {response.status_code} {response.text[:200]}"
                )
                item.refused = f"{response.status_code} {response.text[:200]}"
                return False
            self.progress.post_retries += 1
            await asyncio.sleep(delay + self.rng.uniform(0, delay))
            delay = min(delay * 2, 5.0)

    async def _follow(self, client: httpx.AsyncClient, item: Tracked, until: float) -> None:
        """Long-poll one submission until it is final or ``until`` (monotonic) has passed."""
        submission_id = sorted(item.ids)[0]
        while not self._is_final(item) and time.monotonic() < until:
            try:
                response = await client.get(
                    f"/v1/submissions/{submission_id}", params={"wait": POLL_WAIT}
                )
            except httpx.HTTPError:
                self.progress.poll_retries += 1
                await asyncio.sleep(1.0)
                continue
            if response.status_code == 404:
                item.missing = True
                await asyncio.sleep(1.0)  # a 404 is lost unless a later read finds it
                continue
            if not response.is_success:
                self.progress.poll_retries += 1
                await asyncio.sleep(1.0)
                continue
            item.missing = False
            self._saw(item, response.json())

    def _saw(self, item: Tracked, record: dict[str, Any]) -> None:
        was_final = self._is_final(item)
        item.final = record
        if not was_final and self._is_final(item):
            self.progress.final += 1

    def _clock(self) -> str:
        return f"[{time.monotonic() - self.started:6.0f} s]"

    @staticmethod
    def _is_final(item: Tracked) -> bool:
        return item.final is not None and item.final.get("status") in FINAL and not item.missing

    async def _drain(self, client: httpx.AsyncClient) -> None:
        assert self.drain_deadline is not None  # noqa: S101
        waiting = [t for t in self.tracked if t.accepted and not self._is_final(t)]
        semaphore = asyncio.Semaphore(self.concurrency)

        async def follow(item: Tracked) -> None:
            async with semaphore:
                await self._follow(client, item, self.drain_deadline or 0)

        await asyncio.gather(*(follow(t) for t in waiting))

    # faults -------------------------------------------------------------------------------

    async def _until_posting(self, timeout: float = 30.0) -> None:
        """Until a POST is in flight (or ``timeout`` s): the kill then lands mid-request."""
        deadline = time.monotonic() + timeout
        while self.progress.posting == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def _faults(self) -> None:
        for fault in self.faults:
            while self.progress.accepted < fault.at * self.progress.total:
                await asyncio.sleep(0.5)
            await asyncio.sleep(self.rng.uniform(0, 3))
            if fault.kind == "redis":  # mid-request: is an accepted-or-not POST retried right?
                await self._until_posting()
            record: dict[str, Any] = {
                "kind": fault.kind,
                "at_accepted": self.progress.accepted,
                "at_seconds": round(time.monotonic() - self.started, 1),
                "posts_in_flight": self.progress.posting,
            }
            if fault.kind == "redis":
                down = self.rng.uniform(3, 10)
                await asyncio.to_thread(self.service.kill_redis)
                await asyncio.sleep(down)
                await asyncio.to_thread(self.service.start_redis)
                record["down_seconds"] = round(down, 1)
            elif fault.kind == "worker":
                index = self.rng.randrange(len(self.service.worker_processes))
                record["worker"] = index + 1
                record["pid"] = await asyncio.to_thread(self.service.kill_worker, index)
            else:
                index = self.rng.randrange(len(self.service.worker_processes))
                record["worker"] = index + 1
                record["pid"] = await asyncio.to_thread(self.service.kill_worker_child, index)
            self.last_fault = time.monotonic()
            self.progress.faults.append(record)
            self.say(f"[yellow]{self._clock()} fault: {record}")
