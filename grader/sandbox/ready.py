"""A started sandbox container whose harness said it is ready for a submission."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..domain import Limits
from .engine import EnvironmentImage
from .preimport import PreimportProfile
from .stream import AttachStream


@dataclass
class ReadyContainer:
    """A started container whose harness is ready and waits for a submission.

    In strict mode it takes exactly one. A reuse-capable one (``reuse``) may take more: after
    each run its supervisor restores and verifies it, and the worker keeps it for ``tenant``.
    """

    stream: AttachStream
    image: EnvironmentImage
    limits: Limits
    expires: float
    profile: PreimportProfile = PreimportProfile.FULL
    reuse: bool = False
    runs: int = 0
    """Runs this container has served so far."""
    tenant: str | None = None
    """Whose runs it serves once used (reuse mode): an API key id, or ``*`` for anyone."""
    born: float = field(default_factory=time.monotonic)
    shelved: float = 0.0
    """When it last went back on a shelf, restored (reuse mode and judges)."""

    @property
    def container_id(self) -> str:
        return self.stream.container_id

    @property
    def age(self) -> float:
        return time.monotonic() - self.born
