"""Answers as the API gives them (built from the domain's own models), and a scripted API."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from grader.domain import CapturedStream, EnvironmentRef, Observation, RunMode, RunStatus
from grader.domain.submission import Submission, SubmissionStatus
from grader.domain.verdict import Verdict, VerdictStatus

ENV = "fastapi-0.115-httpx-0.27"
CHALLENGE = "async-test-mastery/q4-counter-after-test"


def observation(**fields: Any) -> Observation:
    values: dict[str, Any] = {
        "status": RunStatus.COMPLETED,
        "environment": EnvironmentRef(name=ENV, image_id="sha256:ab"),
        "mode": RunMode.SCRIPT,
        "stdout": CapturedStream(text="2\n", bytes=2),
        "exit_code": 0,
        **fields,
    }
    return Observation.model_validate(values)


def submission(
    status: SubmissionStatus = SubmissionStatus.QUEUED,
    verdict: VerdictStatus | None = None,
    *,
    submission_id: str = "s1",
) -> dict[str, Any]:
    """``GET /v1/submissions/{id}``'s body for a submission in that state."""
    record = Submission(
        id=submission_id,
        key_id="platform",
        challenge_id=CHALLENGE,
        environment=ENV,
        code="print(2)",
        status=status,
        verdict=None
        if verdict is None
        else Verdict(status=verdict, reason="because", observation=observation()),
    )
    return record.public()


def run_record(status: str = "done", **fields: Any) -> dict[str, Any]:
    """A raw run's body, the shape ``POST /v1/runs`` answers."""
    body: dict[str, Any] = {
        "id": "r1",
        "status": status,
        "environment": ENV,
        "mode": "script",
        "entry": "main.py",
        "files": {"main.py": 12},
        "stdin_bytes": 0,
        "limits": {},
        "metadata": {},
        "callback_url": None,
        "created_at": "2026-12-03T10:00:00+00:00",
        "started_at": None,
        "finished_at": None,
        "attempts": 0,
        "observation": None,
        "image_packages": {},
        "error": None,
        **fields,
    }
    if status == "done" and "observation" not in fields:
        body["observation"] = observation().model_dump(mode="json")
    return body


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


Answer = httpx.Response | Exception


@dataclass
class ScriptedApi:
    """Answers requests in order from ``answers``; records every request it was sent."""

    answers: list[Answer]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sync(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def asynchronous(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            return self(request)

        return httpx.MockTransport(handle)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    def params(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests]


def ok(body: dict[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


Sleeps = list[float]


def recorder() -> tuple[Sleeps, Callable[[float], None]]:
    slept: Sleeps = []
    return slept, slept.append
