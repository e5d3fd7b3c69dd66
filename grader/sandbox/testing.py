"""A sandbox that runs nothing, for unit tests of what calls one (like httpx's MockTransport).

``FakeSandbox(answer)`` answers each ``run`` with ``answer(environment, request)``, which
returns an ``Observation`` or raises (a ``SandboxError`` plays our infrastructure failing),
and records every run. It has the same surface the worker uses of ``DockerSandbox``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..domain import (
    ChildReportStatus,
    EnvironmentRef,
    Limits,
    Observation,
    RunMode,
    RunRequest,
    RunStatus,
)
from .engine import EnvironmentImage

Answer = Callable[[str, RunRequest], Observation]
FAKE_IMAGE_ID = "sha256:" + "f" * 64


def completed(environment: str, mode: RunMode = RunMode.SCRIPT, **fields: object) -> Observation:
    """An observation of a run that completed with exit 0 and a valid child report."""
    return Observation.model_validate(
        {
            "status": RunStatus.COMPLETED,
            "environment": EnvironmentRef(name=environment, image_id=FAKE_IMAGE_ID),
            "mode": mode,
            "exit_code": 0,
            "child_report": ChildReportStatus.OK,
            **fields,
        }
    )


class FakeSandbox:
    """Answers each run from a function; records what was run and under which limits."""

    def __init__(self, answer: Answer, *, packages: dict[str, str] | None = None) -> None:
        self.answer = answer
        self.packages = packages or {}
        self.runs: list[tuple[str, RunRequest, Limits]] = []
        self.closed = False

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        self.runs.append((environment, request, limits))
        return self.answer(environment, request)

    @contextmanager
    def busy(self) -> Iterator[None]:
        yield

    def resolve(self, environment: str) -> EnvironmentImage:
        return EnvironmentImage(environment, FAKE_IMAGE_ID, packages=dict(self.packages))

    def count_containers(self, *, owner: str | None = None) -> int:
        return 0

    def close(self) -> None:
        self.closed = True
