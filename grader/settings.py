"""The one settings object. Built by ``get_settings()`` and passed in; never at import time.

Environment variables use the ``GRADER_`` prefix and ``__`` for nesting, for example
``GRADER_SANDBOX__RUNTIME=runsc`` or ``GRADER_IMAGES__BASE=python:3.11-slim``.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .constants import BASE_IMAGE_REPO, BASE_SUITE, ENV_IMAGE_REPO
from .domain.observation import Limits
from .domain.submission import Role
from .errors import ConfigError

_REPO_ROOT = Path(__file__).resolve().parent.parent


class ImageSettings(BaseModel):
    """Where environments live and how their images are built."""

    root: Path = Field(default=_REPO_ROOT / "images", description="Folder of environments")
    base: str = Field(
        default=f"{BASE_IMAGE_REPO}:{BASE_SUITE}",
        description="Base image; bootstrapped from Debian packages when absent",
    )
    wheel_cache: Path = Field(
        default=Path.home() / ".cache" / "grader" / "wheels",
        description="Host folder of wheels downloaded against the hash locks",
    )
    debian_mirror: str = Field(default="http://deb.debian.org/debian")
    repository: str = Field(
        default=ENV_IMAGE_REPO, description="Image repository of environment images"
    )


class ReuseMode(StrEnum):
    """Whether a sandbox container may serve more than one run (docs/security.md, "Reuse")."""

    OFF = "off"
    """Strict: one container per run, never reused (the default)."""
    SAME_KEY = "same-key"
    """A container serves only submissions sent with one API key."""
    ANY = "any"
    """A container serves any submission of its environment and profile."""


class ReuseSettings(BaseModel):
    """Reuse mode: containers restored to pristine and verified between runs, within bounds."""

    mode: ReuseMode = ReuseMode.OFF
    max_runs: int = Field(default=50, ge=1, description="Runs one container serves at most")
    max_age_seconds: float = Field(
        default=300.0, gt=0, description="A container older than this takes no further run"
    )
    idle_per_key: int = Field(
        default=2, ge=1, description="Used containers kept waiting per environment, profile, key"
    )
    judges: bool = Field(
        default=True,
        description="Restore and reuse the judge container of isolated runs (hidden tests, "
        "never the learner's code) for the same suite; the learner's side stays fresh. "
        "Independent of mode (docs/security.md, 'Reused judges')",
    )
    judges_idle: int = Field(
        default=4,
        ge=1,
        description="Used judges kept waiting per worker process, across all suites (the one "
        "waiting longest goes first)",
    )


class SandboxSettings(BaseModel):
    """How runs are sandboxed: defaults, ceilings, runtime."""

    defaults: Limits = Field(default_factory=Limits)
    maxima: Limits = Field(
        default_factory=lambda: Limits(
            wall_seconds=30.0,
            memory_mib=1024,
            pids=256,
            stdout_bytes=1024 * 1024,
            stderr_bytes=1024 * 1024,
            tmpfs_mib=128,
            cpus=2.0,
            nofile=1024,
        )
    )
    runtime: str | None = Field(default=None, description="e.g. 'runsc' for gVisor")
    pool_size: int = Field(default=2, ge=0, description="Warm containers per environment; 0 = off")
    pool_ttl_seconds: float = Field(
        default=3600.0,
        gt=60,
        description="How long a ready container may wait in the pool before it is replaced "
        "(each replacement costs a container start: bench/results/idle.md)",
    )
    reap_interval_seconds: float = Field(default=60.0, gt=0)
    harness_grace_seconds: float = Field(
        default=2.0, gt=0, description="Time past the wall limit before the container is killed"
    )
    report_max_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    reuse: ReuseSettings = Field(default_factory=ReuseSettings)
    deployment: str = Field(
        default="default",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="Labels this deployment's sandboxes; its reaper removes only those. "
        "Give each deployment (and test run) sharing a Docker engine its own name.",
    )

    @model_validator(mode="after")
    def _defaults_within_maxima(self) -> SandboxSettings:
        for name in Limits.model_fields:
            if getattr(self.defaults, name) > getattr(self.maxima, name):
                raise ValueError(f"sandbox default {name} exceeds its maximum")
        return self

    @model_validator(mode="after")
    def _no_reuse_under_gvisor(self) -> SandboxSettings:
        # Reuse mode's restore verification reads the memory cgroup and kernel tables as
        # Linux shows them; gVisor shows others, so a restore there is not verified.
        if self.runtime == "runsc" and self.reuse.mode is not ReuseMode.OFF:
            raise ValueError("reuse mode is not available with runtime runsc (strict only)")
        return self


class ApiKey(BaseModel):
    """One API key, stored only as its SHA-256 (make one with ``grader keys new``)."""

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Role = Role.SUBMITTER
    webhook_secret: SecretStr | None = None
    rate_per_minute: int | None = Field(default=None, ge=1)
    runs: bool = Field(
        default=False,
        description="May run code without a challenge (POST /v1/runs); instructor and admin "
        "keys always may",
    )


class RedisSettings(BaseModel):
    """Redis is broker, result store and submission store."""

    url: str = "redis://127.0.0.1:6379/0"
    api_connect_timeout_seconds: float = Field(
        default=1.0, gt=0, description="The API's connect timeout: an outage is a quick 503"
    )
    api_read_timeout_seconds: float = Field(
        default=3.0, gt=0, description="The API's read timeout for one Redis command"
    )


class QueueSettings(BaseModel):
    """Celery behaviour."""

    visibility_timeout_seconds: int = Field(
        default=300, ge=5, description="An unacknowledged task is redelivered after this"
    )
    max_retries: int = Field(default=3, ge=0, description="Retries of infrastructure failures")
    retry_backoff_max_seconds: int = Field(default=30, ge=1)
    unsent_after_seconds: int = Field(
        default=30,
        ge=1,
        description="A queued submission whose task is not known to be sent (the broker or "
        "the API failed between storing and sending) is sent by a sweep after this",
    )
    environments: list[str] = Field(
        default_factory=list, description="Queues this worker consumes (default: all)"
    )
    concurrency: int = Field(default=2, ge=1)


class ApiSettings(BaseModel):
    """The HTTP API."""

    keys: list[ApiKey] = Field(default_factory=list)
    challenges_root: Path = Field(default=_REPO_ROOT / "challenges")
    max_body_bytes: int = Field(default=512 * 1024, ge=1024)
    max_code_bytes: int = Field(default=64 * 1024, ge=256)
    max_files: int = Field(
        default=20, ge=1, le=100, description="Files in one raw run or one files submission"
    )
    max_stdin_bytes: int = Field(default=64 * 1024, ge=0, description="A raw run's stdin")
    max_batch: int = Field(default=50, ge=1)
    max_wait_seconds: float = Field(default=30.0, ge=0)
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    rate_per_minute: int = Field(default=120, ge=1, description="Default per-key rate limit")
    webhook_allow_hosts: list[str] = Field(
        default_factory=list, description="Hosts allowed even if they resolve privately"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=6, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> ApiSettings:
        problem = _duplicate_keys(self.keys)
        if problem is not None:
            raise ValueError(problem)
        return self

    def check_for_service(self) -> None:
        """Refuse to serve with no keys, duplicates, weak secrets or well-known default keys.

        Duplicates are checked here too: settings changed with ``model_copy`` skip validators.
        """
        if not self.keys:
            raise ConfigError(
                "no API keys configured: set GRADER_API__KEYS (make one with 'grader keys new')"
            )
        problem = _duplicate_keys(self.keys)
        if problem is not None:
            raise ConfigError(problem)
        for key in self.keys:
            if key.sha256 in _DEFAULT_KEY_HASHES:
                raise ConfigError(f"API key {key.id!r} is a well-known default; make a new one")
            secret = key.webhook_secret.get_secret_value() if key.webhook_secret else None
            if secret is not None and (len(secret) < 32 or secret.lower() in _DEFAULT_SECRETS):
                raise ConfigError(
                    f"webhook secret of key {key.id!r} is too weak (32+ random characters)"
                )


def _duplicate_keys(keys: list[ApiKey]) -> str | None:
    """Why ``keys`` are ambiguous (an id or a key listed twice), or None.

    One raw key under two ids would authenticate as whichever comes last, with its role.
    """
    seen_ids: set[str] = set()
    seen_hashes: dict[str, str] = {}
    for key in keys:
        if key.id in seen_ids:
            return f"API key id {key.id!r} is listed twice; ids must be unique"
        seen_ids.add(key.id)
        if key.sha256 in seen_hashes:
            return (
                f"API keys {seen_hashes[key.sha256]!r} and {key.id!r} have the same sha256: "
                "one key cannot have two ids or roles; make a new key for one of them"
            )
        seen_hashes[key.sha256] = key.id
    return None


_DEFAULT_SECRETS = {"changeme", "change-me", "secret", "password", "default", "test"}
_DEFAULT_KEY_HASHES = {
    hashlib.sha256(word.encode()).hexdigest()
    for word in (*_DEFAULT_SECRETS, "admin", "grader", "apikey", "api-key", "")
}


class LogSettings(BaseModel):
    """How the API and the worker log: JSON lines on stderr by default."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = Field(
        default="json", description="json: one object per line; console: for a terminal"
    )


class WebSettings(BaseModel):
    """The web pages served by the API process (``/console``, ``/play``)."""

    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs the session cookie; derived from the API keys' hashes when unset",
    )
    secure_cookie: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (behind TLS: true)"
    )


class Settings(BaseSettings):
    """Everything that is a deployment choice."""

    model_config = SettingsConfigDict(
        env_prefix="GRADER_", env_nested_delimiter="__", extra="ignore"
    )

    images: ImageSettings = Field(default_factory=ImageSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    web: WebSettings = Field(default_factory=WebSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
