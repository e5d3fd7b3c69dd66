"""The sandbox: one typed ``run`` from a request and limits to a frozen ``Observation``."""

from grader.domain.sandbox import Sandbox

from .docker_sandbox import DockerSandbox, ResolvedImage, Sandboxed, host_config_kwargs
from .pool import WarmPool

__all__ = [
    "DockerSandbox",
    "ResolvedImage",
    "Sandbox",
    "Sandboxed",
    "WarmPool",
    "host_config_kwargs",
]
