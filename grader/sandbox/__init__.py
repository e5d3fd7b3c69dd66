"""Everything that talks to the Docker engine: building images and running submissions.

``DockerSandbox.run(environment, request, limits) -> Observation`` is the one way a snippet
runs; ``ImageBuilder`` and ``build_service_image`` make the images it runs in, offline.
Docker itself is imported only by ``engine.py``, which maps its exceptions onto our errors.
"""

from .engine import EnvironmentImage, connect, image_tag
from .images import BuildResult, ImageBuilder
from .pool import Activity, WarmPool
from .preimport import PreimportProfile
from .ready import ReadyContainer
from .runner import DockerSandbox
from .service_image import build_service_image

__all__ = [
    "Activity",
    "BuildResult",
    "DockerSandbox",
    "EnvironmentImage",
    "ImageBuilder",
    "PreimportProfile",
    "ReadyContainer",
    "WarmPool",
    "build_service_image",
    "connect",
    "image_tag",
]
