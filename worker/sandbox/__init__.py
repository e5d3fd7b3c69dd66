"""The sandbox: one typed ``run`` from a request and limits to a frozen ``Observation``."""

from typing import Protocol

from grader.domain import Limits, Observation, RunRequest

from .docker_sandbox import DockerSandbox, ResolvedImage, Sandboxed, host_config_kwargs
from .pool import WarmPool


class Sandbox(Protocol):
    """Anything that can run a snippet in an environment under limits."""

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        """Run ``request``; user-code failures are data, infrastructure failures raise."""
        ...


__all__ = [
    "DockerSandbox",
    "ResolvedImage",
    "Sandbox",
    "Sandboxed",
    "WarmPool",
    "host_config_kwargs",
]
