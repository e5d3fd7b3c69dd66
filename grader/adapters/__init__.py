"""Adapters to the outside world (Docker images; later Redis and the Celery client)."""

from .images import BuildResult, BuiltImage, ImageBuilder, connect, env_tag

__all__ = ["BuildResult", "BuiltImage", "ImageBuilder", "connect", "env_tag"]
