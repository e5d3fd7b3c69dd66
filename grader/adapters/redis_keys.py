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
"""Hash of counters: verdicts, sandbox failures, webhooks, sweeps and what they re-queued."""
LATENCY: Final = f"{PREFIX}latency"
"""Hash of the acceptance-to-verdict histogram (``le:<bound>``, ``count``, ``sum``)."""
RATE: Final = f"{PREFIX}rate:"
"""``grader:rate:<key id>:<minute>``: requests of one API key in one minute."""
HEARTBEAT: Final = f"{PREFIX}worker:"
"""``grader:worker:<host>:<pid>:<token>``: each worker process's liveness, read by ``/readyz``
and by the sweepers (a submission running in a process without one is orphaned)."""
ENVIRONMENT: Final = f"{PREFIX}env:"
"""``grader:env:<name>``: the image id and packages an environment runs, by the workers."""
QUEUED: Final = f"{PREFIX}active:queued"
"""Sorted set of ``queued`` submission ids, scored by when they were queued (epoch seconds):
what the sweeper looks through for submissions whose task was lost."""
RUNNING: Final = f"{PREFIX}active:running"
"""Sorted set of ``running`` submission ids, scored by when their attempt started."""
RUNNERS: Final = f"{PREFIX}runners"
"""Hash: ``running`` submission id -> the worker process (``<host>:<pid>:<token>``) running it."""
WEBHOOK_OUTBOX: Final = f"{PREFIX}outbox:webhooks"
"""Sorted set of submission ids whose webhook is still to be queued, scored by when it was
due (or last claimed): a result is stored together with its entry here, so a crash or a
Redis restart between storing and queueing the webhook loses nothing."""
RUN_OUTBOX: Final = f"{PREFIX}outbox:runs"
"""Sorted set of ``queued`` submission ids whose run task is not known to be sent, scored by
when they were stored (or last claimed): a submission is stored together with its entry here,
which goes once its task is sent or an attempt starts. So a Redis death or an API crash
between storing and sending costs a replay's re-send or a sweep's (after a short margin), not
the sweeper's queued deadline."""
LEARNER: Final = f"{PREFIX}learner:"
"""``grader:learner:<key id>:<sha256 of the learner_id>:<set>/<challenge>``: one learner's
session at one challenge (a hash: when it opened, attempts used, each graded result), kept for
the retention period after its last change. Learner ids are scoped to the API key."""
BADGE: Final = f"{PREFIX}badge:"
"""``grader:badge:<key id>:<sha256 of the learner_id>:<set>``: the set's badge as earned, once
(JSON: name, time, the submission that earned it); kept for the retention period."""
BOOK: Final = f"{PREFIX}book"
"""Sorted set of every submission id, scored by its creation (epoch seconds): the gradebook's
order for admin keys. Entries older than the retention period are trimmed on each write."""
BOOK_OF_KEY: Final = f"{PREFIX}book:key:"
"""``grader:book:key:<key id>``: the same, for one API key's submissions."""
BANK: Final = f"{PREFIX}bank:"
"""The challenge bank (``grader.adapters.bank``); every key below starts with it."""
BANK_REVISION: Final = f"{BANK}rev:"
"""``grader:bank:rev:<revision>``: one revision's JSON (the challenge, its status and report);
kept for good, so every submission's revision stays readable."""
BANK_CHALLENGE: Final = f"{BANK}challenge:"
"""``grader:bank:challenge:<set>/<id>``: JSON of its head, published revision, history."""
BANK_PUBLISHED: Final = f"{BANK}published"
"""Hash ``<set>/<id>`` -> published revision: what learners can submit to."""
BANK_VERSION: Final = f"{BANK}version"
"""Counter bumped with every change of ``BANK_PUBLISHED``: each process's cache of published
challenges is current while this is what it read."""
BANK_SEEDED: Final = f"{BANK}seeded"
"""Set once the bundled challenges are in the bank (the first process to start puts them)."""
BANK_VALIDATING: Final = f"{BANK}validating"
"""Sorted set of revisions still ``validating``, scored by when their task was (last) sent:
the sweepers re-send a validation whose task was lost."""
BANK_SUBMISSIONS: Final = f"{BANK}subs:"
"""Sorted set ``grader:bank:subs:<set>/<id>`` of submission ids by creation time: what a
regrade re-runs (entries whose submission expired are dropped when met)."""
BANK_REGRADE: Final = f"{BANK}regrade:"
"""``grader:bank:regrade:<job id>``: a regrade job and what it found, kept for the retention."""
