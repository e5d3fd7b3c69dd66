"""The one error tree of Grader. Everything we raise on purpose derives from ``GraderError``.

    GraderError
    ├── ConfigError              settings refuse an unsafe or inconsistent value
    ├── LimitsError              a limit override is unknown, invalid or above the maximum
    ├── ChallengeError           a challenge file is wrong (message: file:line: field: why)
    ├── EnvironmentError_        an environment folder, manifest or lock is wrong
    │   └── UnknownEnvironment   no environment by that name
    ├── ImageError               building, finding or inspecting an image failed
    │   ├── ImageNotBuilt        the environment's image is not in the engine
    │   └── BootstrapError       the offline base image could not be made
    └── SandboxError             our side of a run failed (daemon, image, harness protocol);
        └── HarnessProtocolError the harness's report was missing, oversized or malformed

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
    """A challenge file is wrong; the message names the file, the line and the field."""


class EnvironmentError_(GraderError):
    """An environment folder, manifest or lock file is wrong."""


class UnknownEnvironment(EnvironmentError_):
    """No environment has that name."""


class ImageError(GraderError):
    """Building, finding or inspecting an image failed."""


class ImageNotBuilt(ImageError):
    """The environment's image is not in the engine; run ``grader images build``."""


class BootstrapError(ImageError):
    """The offline base image could not be bootstrapped."""


class SandboxError(GraderError):
    """Our side of a run failed: the daemon, the image or the harness protocol."""


class HarnessProtocolError(SandboxError):
    """The harness's report was missing, oversized or did not match the schema."""


__all__ = [
    "BootstrapError",
    "ChallengeError",
    "ConfigError",
    "EnvironmentError_",
    "GraderError",
    "HarnessProtocolError",
    "ImageError",
    "ImageNotBuilt",
    "LimitsError",
    "SandboxError",
    "UnknownEnvironment",
]
