"""The sandbox as the domain sees it: one typed ``run``. Implemented in ``grader.sandbox``."""

from __future__ import annotations

from typing import Protocol

from .observation import Limits, Observation, RunRequest


class Sandbox(Protocol):
    """Anything that can run a snippet in an environment under limits."""

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        """Run ``request``; user-code failures are data, infrastructure failures raise."""
        ...
