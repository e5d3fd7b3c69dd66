"""Grader: a sandboxed code-execution grader for Python challenges.

``grader.api`` (HTTP), ``grader.cli``, ``grader.domain`` (pure), ``grader.adapters`` (Redis, Celery
client, webhooks) and ``grader.sandbox`` (Docker). The Celery process is the ``worker`` package.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
