"""Every Redis key and channel name Grader uses, in one place.

Celery's own keys (one list per queue, named by ``queue.queue_for``; ``unacked*``) are
Celery's; everything else starts with ``grader:``.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "grader:"
SUBMISSION: Final = f"{PREFIX}sub:"
"""One JSON document per submission: ``grader:sub:<id>``, kept for the retention period."""
IDEMPOTENCY: Final = f"{PREFIX}idem:"
"""``grader:idem:<key id>:<sha256 of the Idempotency-Key>`` -> the first submission's id."""
DONE_CHANNEL: Final = f"{PREFIX}done:"
"""Pub/sub channel ``grader:done:<id>``: the final record, announced once stored."""
STATS: Final = f"{PREFIX}stats"
"""Hash of counters: verdicts, sandbox failures, webhooks."""
LATENCY: Final = f"{PREFIX}latency"
"""Hash of the acceptance-to-verdict histogram (``le:<bound>``, ``count``, ``sum``)."""
RATE: Final = f"{PREFIX}rate:"
"""``grader:rate:<key id>:<minute>``: requests of one API key in one minute."""
HEARTBEAT: Final = f"{PREFIX}worker:"
"""``grader:worker:<host>:<pid>``: each worker process's liveness, read by ``/readyz``."""
ENVIRONMENT: Final = f"{PREFIX}env:"
"""``grader:env:<name>``: the image id and packages an environment runs, by the workers."""
