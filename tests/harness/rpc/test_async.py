"""Async learner code through proxies: one persistent loop, async iteration, ASGI, lifespan."""

# mypy: disable-error-code="import-not-found"
# ruff: noqa: PLC0415  (each test imports the learner module its own learner side serves)

from __future__ import annotations

import textwrap
from collections.abc import Callable

import httpx
import pytest

from .conftest import Learner

SOLUTION = textwrap.dedent(
    """
    import asyncio
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request

    state = {"loop": None}

    async def double(x):
        await asyncio.sleep(0)
        return x * 2

    async def same_loop():
        loop = asyncio.get_running_loop()
        if state["loop"] is None:
            state["loop"] = loop
        return state["loop"] is loop

    async def ticks(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    class Resource:
        def __init__(self):
            self.events = []

        async def __aenter__(self):
            self.events.append("enter")
            return self

        async def __aexit__(self, *exc):
            self.events.append("exit")
            return False

    async def call_async(callback, value):
        return await callback(value) + 1

    @asynccontextmanager
    async def lifespan(app):
        app.state.greeting = "hello"
        yield
        events.append("shutdown")

    events = []
    app = FastAPI(lifespan=lifespan)

    @app.get("/greet")
    async def greet(request: Request):
        return {"greeting": request.app.state.greeting}

    @app.post("/echo")
    async def echo(request: Request):
        return {"body": (await request.body()).decode(), "query": request.url.query}
    """
)


@pytest.mark.asyncio
async def test_coroutines_are_awaited_on_one_persistent_loop(
    learner: Callable[..., Learner],
) -> None:
    """Remote coroutines run on the learner's loop, the same loop every time."""
    learner({"solution.py": SOLUTION})
    import solution

    assert await solution.double(21) == 42
    assert await solution.same_loop() is True
    assert await solution.same_loop() is True


@pytest.mark.asyncio
async def test_async_generators_iterate_remotely(learner: Callable[..., Learner]) -> None:
    """``async for`` over a remote async generator yields its values, then stops."""
    learner({"solution.py": SOLUTION})
    import solution

    assert [i async for i in solution.ticks(3)] == [0, 1, 2]


@pytest.mark.asyncio
async def test_async_context_managers_enter_and_exit(learner: Callable[..., Learner]) -> None:
    """``async with`` a remote object runs its ``__aenter__`` and ``__aexit__`` remotely."""
    learner({"solution.py": SOLUTION})
    import solution

    resource = solution.Resource()
    async with resource as entered:
        assert entered is resource
        assert resource.events == ["enter"]
    assert resource.events == ["enter", "exit"]


@pytest.mark.asyncio
async def test_async_judge_callbacks_are_awaited_by_the_learner(
    learner: Callable[..., Learner],
) -> None:
    """A judge ``async def`` passed to the learner is a coroutine function there."""
    learner({"solution.py": SOLUTION})
    import solution

    async def triple(value: int) -> int:
        return value * 3

    assert await solution.call_async(triple, 5) == 16


@pytest.mark.asyncio
async def test_asgi_transport_drives_a_remote_app(learner: Callable[..., Learner]) -> None:
    """``httpx.ASGITransport(app=proxy)`` sends bodies and queries and reads the answers."""
    learner({"solution.py": SOLUTION})
    from solution import app

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/echo?x=1", content=b"payload")
    assert response.status_code == 200
    assert response.json() == {"body": "payload", "query": "x=1"}


@pytest.mark.asyncio
async def test_lifespan_runs_startup_and_shutdown_remotely(
    learner: Callable[..., Learner],
) -> None:
    """The lifespan protocol relayed event by event: startup state is seen by requests."""
    learner({"solution.py": SOLUTION})
    from solution import app, events

    sent: list[dict[str, object]] = []
    greeted: list[object] = []
    incoming: list[dict[str, object]] = [
        {"type": "lifespan.startup"},
        {"type": "lifespan.shutdown"},
    ]

    async def receive() -> dict[str, object]:
        if len(incoming) == 1:  # between startup and shutdown, the app serves a request
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                greeted.append((await client.get("/greet")).json())
        return incoming.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await app(scope, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert greeted == [{"greeting": "hello"}]
    assert events == ["shutdown"]


AUTH = textwrap.dedent(
    """
    from fastapi import Depends, FastAPI, Header, HTTPException

    app = FastAPI()

    async def get_current_user(authorization: str | None = Header(default=None)) -> str:
        if authorization != "Bearer secret":
            raise HTTPException(status_code=401, detail="Not authenticated")
        return "alice"

    @app.get("/me")
    async def me(user: str = Depends(get_current_user)):
        return {"user": user}
    """
)


@pytest.mark.asyncio
async def test_judge_side_dependency_overrides_reach_the_app(
    learner: Callable[..., Learner],
) -> None:
    """A judge lambda put in ``app.dependency_overrides`` is called by FastAPI (in a thread)."""
    learner({"solution.py": AUTH})
    from solution import app, get_current_user

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/me")).status_code == 401
        app.dependency_overrides[get_current_user] = lambda: "test-user"
        assert get_current_user in app.dependency_overrides
        response = await client.get("/me")
        assert response.json() == {"user": "test-user"}

        async def other_user() -> str:
            return "bob"

        app.dependency_overrides[get_current_user] = other_user
        assert (await client.get("/me")).json() == {"user": "bob"}
        app.dependency_overrides.clear()
        assert app.dependency_overrides == {}
        assert (await client.get("/me")).status_code == 401
