"""Wire format between the worker and the harness, and between the harness's two processes.

Stdlib only: this package runs inside every environment image, whatever its packages.

Worker -> supervisor (container stdin): one line of JSON, a ``Submission``.
Supervisor -> worker (container stdout): JSON lines, first ``{"key": ..., "event": "ready",
...}`` then exactly one ``{"key": ..., "event": "report", ...}``, each later line after a
newline and starting with the same key (``reportkey.py``), so that lines a snippet manages to
write there (gVisor lets it open ``/proc/1/fd/1``) are never taken for the supervisor's.
Child -> supervisor: one JSON document on a private pipe, read with a byte cap and treated as
the snippet's own claims (the snippet runs in that process and could have written it).

Isolated runs (``judge`` and ``serve`` modes, two containers): between the submission and the
report, both directions also carry frames, lines of ``rpc `` and one frame each, which the
worker copies from one container to the other; ``end`` on stdin closes the channel.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1

# Hard caps the harness applies whatever the submission asks for.
MAX_SUBMISSION_BYTES = 4 * 1024 * 1024
MAX_CHILD_REPORT_BYTES = 1024 * 1024
MAX_COMPILE_REPORT_BYTES = 16 * 1024
MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_CHARS = 8000
MAX_STATE_JSON_CHARS = 64 * 1024
MAX_TEST_OUTPUT_CHARS = 8000
MAX_TESTS = 500
MAX_SUBTESTS = 100  # variations kept per test (all are counted)
MAX_SUBTEST_OUTPUT_CHARS = 2000
MAX_CASES = 50  # stdin cases of one run (script mode), each run by a child of its own
# Legitimate child reports nest about 8 deep (state values up to 20 more); anything deeper
# is refused before it can exhaust a JSON parser's recursion anywhere downstream.
MAX_REPORT_DEPTH = 40

# Bytes asked of one read() on the submission (stdin) and on the child's pipes.
READ_CHUNK = 65536

WORKDIR = "/sandbox"
SUPPORTED_MODES = ("script", "pytest")
# The two halves of an isolated run: ``judge`` runs the hidden tests and never the learner's
# code; ``serve`` imports the learner's modules and answers the judge's requests.
ISOLATED_MODES = ("judge", "serve")
# The modes a reuse-capable container may serve again after a restore: a judge's container
# (never the learner's code) and, in reuse mode, a run's own.
REUSABLE_MODES = ("script", "pytest", "judge")

RPC_PREFIX = b"rpc "
END_LINE = b"end"
MAX_RPC_FRAME_BYTES = 1024 * 1024
MAX_RPC_BACKLOG_BYTES = 8 * 1024 * 1024

# How a snippet's pytest session is configured (plugins, asyncio, warnings), whoever runs it:
# the child, the supervisor's warm-up, and the benchmark's harness-free launcher.
PYTEST_SESSION_OPTIONS = (
    "-p",
    "no:cacheprovider",
    "-o",
    "asyncio_mode=strict",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
    "-W",
    "ignore::DeprecationWarning",
)

# Exit code of the child when the harness itself (not the snippet) failed inside it.
CHILD_INTERNAL_ERROR = 70
