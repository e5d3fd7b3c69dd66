"""What the worker's unit tests share: a challenge, fake sandboxes, a runtime on a real Redis."""

from __future__ import annotations

import base64
import json

import redis

from grader.adapters.queue import TaskQueue, queue_for
from grader.adapters.store import SubmissionStore, new_id
from grader.domain import CapturedStream, Observation, RunRequest
from grader.domain.challenge import Challenge
from grader.domain.submission import Submission
from grader.errors import HarnessProtocolError
from grader.sandbox.testing import FakeSandbox, completed
from grader.settings import SandboxSettings
from grader.testing import service_settings
from worker.runtime import Runtime

ENV = "env-a"
PRINTS_TWO = Challenge.model_validate(
    {
        "id": "prints-two",
        "set": "s",
        "title": "t",
        "prompt": "p",
        "environment": ENV,
        "kind": "output",
        "code": "print(2)",
        "expectation": {"output": {"stdout": "2\n"}},
    }
)


def printing(text: str) -> FakeSandbox:
    return FakeSandbox(
        lambda env, _: completed(env, stdout=CapturedStream(text=text, bytes=len(text))),
        packages={"httpx": "0.27.2"},
    )


def failing_infrastructure(_: str, __: RunRequest) -> Observation:
    raise HarnessProtocolError("no report from the harness")


def runtime_with(
    store: SubmissionStore, sandbox: FakeSandbox, redis_url: str, **sandbox_settings: object
) -> Runtime:
    settings = service_settings(redis_url)
    settings.sandbox = SandboxSettings.model_validate(sandbox_settings)
    return Runtime(
        settings, store, TaskQueue(settings), sandbox, {PRINTS_TWO.qualified_id: PRINTS_TWO}
    )


def submitted(store: SubmissionStore, code: str = "print(2)", **fields: object) -> str:
    submission = Submission.model_validate(
        {
            "id": new_id(),
            "key_id": "platform",
            "challenge_id": PRINTS_TWO.qualified_id,
            "environment": ENV,
            "code": code,
            **fields,
        }
    )
    store.create(submission)
    return submission.id


def queued_ids(client: redis.Redis, queue: str = queue_for(ENV)) -> list[str]:
    """The submission ids of the run tasks waiting in a Celery queue (kombu's JSON envelopes);
    the bank's tasks in the same queue (validations, regrades) name no submission."""
    ids = []
    for raw in client.lrange(queue, 0, -1):
        args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
        if "submission_id" in args[0]:
            ids.append(args[0]["submission_id"])
    return ids
