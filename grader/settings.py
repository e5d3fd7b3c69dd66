"""The one settings object. Built by ``get_settings()`` and passed in; never at import time.

Environment variables use the ``GRADER_`` prefix and ``__`` for nesting, for example
``GRADER_SANDBOX__RUNTIME=runsc`` or ``GRADER_IMAGES__BASE=python:3.11-slim``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .constants import BASE_IMAGE_REPO, BASE_SUITE, ENV_IMAGE_REPO
from .domain.observation import Limits

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
    pool_ttl_seconds: float = Field(default=600.0, gt=10)
    reap_interval_seconds: float = Field(default=60.0, gt=0)
    harness_grace_seconds: float = Field(
        default=2.0, gt=0, description="Time past the wall limit before the container is killed"
    )
    report_max_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)

    @model_validator(mode="after")
    def _defaults_within_maxima(self) -> SandboxSettings:
        for name in Limits.model_fields:
            if getattr(self.defaults, name) > getattr(self.maxima, name):
                raise ValueError(f"sandbox default {name} exceeds its maximum")
        return self


class Settings(BaseSettings):
    """Everything that is a deployment choice."""

    model_config = SettingsConfigDict(
        env_prefix="GRADER_", env_nested_delimiter="__", extra="ignore"
    )

    images: ImageSettings = Field(default_factory=ImageSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
