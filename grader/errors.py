"""The one error tree of Grader. Everything we raise on purpose derives from ``GraderError``.

    GraderError
    ├── ConfigError              settings refuse an unsafe or inconsistent value
    ├── LimitsError              a limit override is unknown, invalid or above the maximum
    ├── ChallengeError           a challenge file is wrong (message: file:line: field: why)
    ├── InvalidEnvironment       an environment folder, manifest or lock is wrong
    │   └── UnknownEnvironment   no environment by that name
    ├── ImageError               building, finding or inspecting an image failed
    │   ├── ImageNotBuilt        the environment's image is not in the engine
    │   └── BootstrapError       the offline base image could not be made
    ├── StoreError               Redis (the submission store) failed
    ├── QueueError               the broker refused a task
    ├── AuthError                missing or unknown API key (401)
    │   └── Forbidden            the key's role does not allow this (403)
    ├── RateLimited              the key is over its rate limit (429)
    ├── NotFound                 no such submission, challenge or environment (404)
    ├── Conflict                 the request contradicts what is stored (409)
    ├── Rejected                 the request is invalid (400/413/422)
    ├── AttemptsExhausted        the learner has no attempt left at this challenge (409)
    ├── UnsafeCallback           a callback URL points at a private address (422)
    ├── WebhookUndelivered       a webhook's receiver answered 5xx/429 or could not be reached
    ├── ClientError              grader.client got no usable answer from the API
    │   ├── ApiError             the API answered an error (status, code, message)
    │   └── Unreachable          no answer at all (connection, DNS, timeout), after retries
    └── SandboxError             our side of a run failed (engine, image, harness protocol)
        ├── HarnessProtocolError the harness's report was missing, oversized or malformed
        ├── NotInEngine          the engine has no such container or image
        └── EngineConflict       the engine refused: that object is busy (a removal under way)

Docker's own exceptions are translated in one place, ``grader.sandbox.engine.engine_errors``.

What a learner's snippet does (time out, run out of memory, crash) is never an exception: it
is data in the ``Observation``.
"""

from __future__ import annotations


class GraderError(Exception):
    """Root of every error Grader raises on purpose."""


class ConfigError(GraderError):
    """A setting is unsafe or inconsistent."""


class LimitsError(GraderError):
    """A limit override is unknown, invalid or above the server's maximum."""


class ChallengeError(GraderError):
    """A challenge file is wrong; the message names the file, the line and the field.

    ``problems`` lists each one (``file``, ``line``, ``field``, ``message``) when there are
    several, for the API's answer to an upload."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems


class InvalidEnvironment(GraderError):
    """An environment folder, manifest or lock file is wrong."""


class UnknownEnvironment(InvalidEnvironment):
    """No environment has that name."""


class ImageError(GraderError):
    """Building, finding or inspecting an image failed."""


class ImageNotBuilt(ImageError):
    """The environment's image is not in the engine; run ``grader images build``."""


class BootstrapError(ImageError):
    """The offline base image could not be bootstrapped."""


class StoreError(GraderError):
    """Redis, as the submission store, failed."""


class QueueError(GraderError):
    """The broker refused a task."""


class AuthError(GraderError):
    """Missing or unknown API key."""


class Forbidden(AuthError):
    """The key's role does not allow this."""


class RateLimited(GraderError):
    """The key is over its rate limit; ``retry_after`` says when to come back."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(GraderError):
    """No such submission, challenge or environment."""


class Conflict(GraderError):
    """The request contradicts what is stored (a challenge that already exists)."""


class Rejected(GraderError):
    """The request is invalid; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AttemptsExhausted(GraderError):
    """The learner has used every attempt the challenge allows; nothing was stored."""


class UnsafeCallback(GraderError):
    """A callback URL resolves to a private, loopback or link-local address."""


class WebhookUndelivered(GraderError):
    """A webhook's receiver answered 5xx or 429, or could not be reached: delivery is retried."""


class ClientError(GraderError):
    """``grader.client`` got no usable answer from the API."""


class ApiError(ClientError):
    """The API answered an error: its HTTP status, its stable ``code`` and its message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[dict[str, str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        self.retry_after = retry_after


class Unreachable(ClientError):
    """No answer from the API: refused connection, unknown host or timeout, after retries."""


class SandboxError(GraderError):
    """Our side of a run failed: the daemon, the image or the harness protocol."""


class HarnessProtocolError(SandboxError):
    """The harness's report was missing, oversized or did not match the schema."""


class NotInEngine(SandboxError):
    """The engine has no such container or image."""


class EngineConflict(SandboxError):
    """The engine refused because the object is busy (for example, a removal under way)."""


__all__ = [
    "ApiError",
    "AttemptsExhausted",
    "AuthError",
    "BootstrapError",
    "ChallengeError",
    "ClientError",
    "ConfigError",
    "Conflict",
    "EngineConflict",
    "Forbidden",
    "GraderError",
    "HarnessProtocolError",
    "ImageError",
    "ImageNotBuilt",
    "InvalidEnvironment",
    "LimitsError",
    "NotFound",
    "NotInEngine",
    "QueueError",
    "RateLimited",
    "Rejected",
    "SandboxError",
    "StoreError",
    "UnknownEnvironment",
    "Unreachable",
    "UnsafeCallback",
    "WebhookUndelivered",
]
