"""Shared fixtures. Integration fixtures use the real Docker engine and real images."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import pytest_asyncio

from grader.api.app import create_app
from grader.domain import Limits, Observation, RunMode, RunRequest
from grader.domain.environment import select
from grader.errors import ImageNotBuilt
from grader.sandbox import DockerSandbox, ImageBuilder, connect
from grader.settings import Settings
from grader.testing import (
    ApiProcess,
    RedisServer,
    WorkerProcess,
    clear_heartbeats,
    service_settings,
)

# Every sandbox this test run starts carries its own deployment label, so its reapers never
# touch a running service's sandboxes on the same engine, nor another run's.
os.environ.setdefault("GRADER_SANDBOX__DEPLOYMENT", f"test-{uuid.uuid4().hex[:8]}")

OLD_ENV = "fastapi-0.115-httpx-0.27"
NEW_ENV = "fastapi-0.165-httpx-0.28"
GVISOR = Settings().sandbox.runtime == "runsc"
"""Whether this test run's sandboxes run under gVisor (``GRADER_SANDBOX__RUNTIME=runsc``);
tests whose safe outcome differs there assert each runtime's outcome exactly."""


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def built_environments(settings: Settings) -> list[str]:
    """Every environment's image, built offline first if it is missing or stale."""
    builder = ImageBuilder(connect(), settings.images)
    names = []
    for env in select(settings.images.root, None):
        try:
            builder.built(env.name)
            current = builder.is_current(env, builder.ensure_base())
        except ImageNotBuilt:
            current = False
        if not current:
            builder.build(env, builder.ensure_base())
        names.append(env.name)
    return names


@pytest.fixture(scope="session")
def sandbox(settings: Settings, built_environments: list[str]) -> Iterator[DockerSandbox]:
    created = DockerSandbox.from_settings(settings.sandbox, repository=settings.images.repository)
    yield created
    created.close()  # its used judges wait with their attach streams open


PostCondition = Callable[[Observation | None, float, Limits], None]
"""A check after each run: its observation (None if it raised), seconds taken, its limits."""


class Runner:
    """Small helper so tests read as 'run this snippet there'."""

    def __init__(self, sandbox: DockerSandbox, after: PostCondition | None = None) -> None:
        self.sandbox = sandbox
        self._after = after

    def checked(self, after: PostCondition) -> Runner:
        """The same sandbox, with ``after`` checked on the way out of every run."""
        return Runner(self.sandbox, after)

    def _run(self, env: str, request: RunRequest, limits: Limits | None) -> Observation:
        wanted = limits or Limits()
        started = time.monotonic()
        obs: Observation | None = None
        try:
            obs = self.sandbox.run(env, request, wanted)
            return obs
        finally:
            # Containers of finished runs are removed in the background; tests that check
            # for leftovers wait for that removal first.
            self.sandbox.drain_removals()
            if self._after is not None:
                self._after(obs, time.monotonic() - started, wanted)

    def script(
        self,
        code: str,
        *,
        env: str = OLD_ENV,
        state: tuple[str, ...] = (),
        limits: Limits | None = None,
        files: dict[str, str] | None = None,
    ) -> Observation:
        request = RunRequest(
            mode=RunMode.SCRIPT,
            files={"main.py": code, **(files or {})},
            entry="main.py",
            state=state,
        )
        return self._run(env, request, limits)

    def pytest(
        self,
        code: str,
        *,
        env: str = OLD_ENV,
        state: tuple[str, ...] = (),
        limits: Limits | None = None,
    ) -> Observation:
        request = RunRequest(
            mode=RunMode.PYTEST,
            files={"test_snippet.py": code},
            entry="test_snippet.py",
            state=state,
        )
        return self._run(env, request, limits)


@pytest.fixture(scope="session")
def run(sandbox: DockerSandbox) -> Runner:
    return Runner(sandbox)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for the whole session (AOF on)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop(graceful=False)


@pytest.fixture(scope="session")
def worker_process(
    redis_server: RedisServer,
    built_environments: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """A real Celery worker process consuming every environment queue."""
    worker = WorkerProcess(redis_server.url, tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()
    clear_heartbeats(redis_server.url)


@pytest.fixture(scope="module")
def api_process(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """The API as the service starts it (uvicorn, the service's protocol) on the session's Redis."""
    process = ApiProcess(redis_server.url, tmp_path_factory.mktemp("uvicorn") / "api.log")
    process.start()
    yield process
    process.stop()


@pytest_asyncio.fixture
async def api(redis_server: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    """The API app in-process, talking to the real Redis."""
    app = create_app(service_settings(redis_server.url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://grader") as client:
        yield client
    state = app.state.grader
    await state.completions.close()
    state.store.client.close()
