"""The console's pages through the app on the real Redis: sign-in, roles, CSRF, escaping."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from grader.adapters.store import SubmissionStore
from grader.api.app import create_app
from grader.domain.observation import (
    CapturedStream,
    EnvironmentRef,
    Observation,
    RunMode,
    RunStatus,
)
from grader.domain.submission import Submission
from grader.domain.verdict import TestVerdict, Verdict, VerdictStatus
from grader.testing import INSTRUCTOR_KEY, OTHER_KEY, SUBMITTER_KEY, RedisServer, service_settings

HOSTILE = "<script>alert(1)</script>\x1b[31mred\u202eevil\u200b"
Q1 = "async-test-mastery/q1-async-test-output"


@pytest_asyncio.fixture
async def app(redis_server: RedisServer) -> AsyncIterator[FastAPI]:
    created = create_app(service_settings(redis_server.url))
    yield created
    await created.state.grader.completions.close()
    created.state.grader.store.close()


def _browser(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://grader")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


async def _signed_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/signin")
    return await client.post(
        "/signin", data={"api_key": key, "csrf_token": _csrf(form.text), "next": "/console"}
    )


@pytest.mark.asyncio
async def test_a_page_without_a_session_sends_to_sign_in_and_back(app: FastAPI) -> None:
    async with _browser(app) as client:
        response = await client.get("/console/challenges/a/b?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fconsole%2Fchallenges%2Fa%2Fb%3Fx%3D1"


@pytest.mark.asyncio
async def test_signing_in_sets_a_strict_httponly_cookie_without_the_key(app: FastAPI) -> None:
    async with _browser(app) as client:
        response = await _signed_in(client, SUBMITTER_KEY)
        assert response.status_code == 303
        assert response.headers["location"] == "/console"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("grader_session=")
        assert "httponly" in cookie.lower()
        assert "samesite=strict" in cookie.lower()
        assert SUBMITTER_KEY not in cookie
        console = await client.get("/console")
    assert console.status_code == 200
    assert "platform" in console.text  # the key's id, shown as who is signed in
    assert 'href="/console/challenges/async-test-mastery/q1-async-test-output"' in console.text
    assert console.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.asyncio
async def test_a_wrong_key_is_refused_on_the_form(app: FastAPI) -> None:
    async with _browser(app) as client:
        response = await _signed_in(client, "grd_not_a_key")
        assert response.status_code == 401
        assert "unknown API key" in response.text
        assert (await client.get("/console")).status_code == 303


@pytest.mark.asyncio
async def test_a_form_without_this_sessions_token_is_refused(app: FastAPI) -> None:
    """A cross-site post carries no token (or another session's): nothing happens."""
    async with _browser(app) as client:
        await client.get("/signin")
        forged = await client.post(
            "/signin", data={"api_key": SUBMITTER_KEY, "csrf_token": "guess", "next": "/console"}
        )
        assert forged.status_code == 403
        assert (await client.get("/console")).status_code == 303
        await _signed_in(client, SUBMITTER_KEY)
        signout = await client.post("/signout", data={"csrf_token": "guess"})
        assert signout.status_code == 403
        assert (await client.get("/console")).status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil.example"])
async def test_sign_in_never_redirects_off_site(app: FastAPI, target: str) -> None:
    async with _browser(app) as client:
        form = await client.get("/signin", params={"next": target})
        assert 'name="next" value="/console"' in form.text
        response = await client.post(
            "/signin",
            data={"api_key": SUBMITTER_KEY, "csrf_token": _csrf(form.text), "next": target},
        )
    assert response.headers["location"] == "/console"


@pytest.mark.asyncio
async def test_the_answer_key_is_for_instructors_only(app: FastAPI) -> None:
    challenge = app.state.grader.challenges[Q1]
    path = f"/console/challenges/{Q1}"
    async with _browser(app) as learner, _browser(app) as teacher:
        await _signed_in(learner, SUBMITTER_KEY)
        await _signed_in(teacher, INSTRUCTOR_KEY)
        seen_by_learner = (await learner.get(path)).text
        seen_by_teacher = (await teacher.get(path)).text
    assert "Answer key" not in seen_by_learner
    assert "Answer key" in seen_by_teacher
    assert ">answer</span>" in seen_by_teacher
    assert ">answer</span>" not in seen_by_learner
    assert challenge.explanation[:40] in seen_by_teacher.replace("&#39;", "'")


def _stored(app: FastAPI, key_id: str) -> Submission:
    store: SubmissionStore = app.state.grader.store
    submission, _ = store.create(
        Submission(id=f"web-{key_id}-1", key_id=key_id, challenge_id=Q1, code=HOSTILE)
    )
    observation = Observation(
        status=RunStatus.COMPLETED,
        environment=EnvironmentRef(name="fastapi-0.115-httpx-0.27", image_id="sha256:abc"),
        mode=RunMode.SCRIPT,
        stdout=CapturedStream(text=HOSTILE, bytes=len(HOSTILE)),
    )
    verdict = Verdict(
        status=VerdictStatus.FAILED,
        reason=HOSTILE,
        diff=HOSTILE,
        observation=observation,
        tests=(
            TestVerdict(name=HOSTILE, status="failed", points=0, max_points=1, message=HOSTILE),
        ),
    )
    store.finish(submission, verdict)
    return submission


@pytest.mark.asyncio
async def test_learner_text_is_escaped_and_controls_shown(app: FastAPI) -> None:
    submission = _stored(app, "platform")
    async with _browser(app) as client:
        await _signed_in(client, SUBMITTER_KEY)
        html = (await client.get(f"/console/submissions/{submission.id}")).text
    assert "<script>" not in html
    assert "\x1b" not in html
    assert "\u202e" not in html
    assert "\u200b" not in html
    assert (
        html.count("&lt;script&gt;alert(1)&lt;/script&gt;&lt;U+001B&gt;[31mred&lt;U+202E&gt;") >= 5
    )


@pytest.mark.asyncio
async def test_another_keys_submission_is_not_found(app: FastAPI) -> None:
    submission = _stored(app, "platform")
    async with _browser(app) as client:
        await _signed_in(client, OTHER_KEY)
        response = await client.get(f"/console/submissions/{submission.id}")
    assert response.status_code == 404
    assert HOSTILE[:10] not in response.text
