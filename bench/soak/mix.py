"""The soak's mix: right, wrong, time-limit, memory-bomb and hostile submissions, each with
the verdict it must get, known before it is sent.

Right answers are the challenge files' own reference code (or their answer key); wrong ones
are built to miss the expectation; the hostile ones are the tricks of ``tests/security``
(fake reports, writes into the supervisor's descriptors, early exits, fork bombs within the
pids limit, objects equal to everything), none of which may turn into a pass.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.domain.challenge import Challenge
from grader.domain.loader import load_challenges

from .accounting import Planned

OUTPUT_PYTEST = "async-test-mastery/q1-async-test-output"
SYNTAX = "async-test-mastery/q2-which-option-is-a-syntax-error"
EXCEPTION = "async-test-mastery/q3-why-runtime-error"
STATE = "async-test-mastery/q4-counter-after-test"
CONCEPTUAL = "async-test-mastery/q5-test-isolation"
SCRIPT = "fastapi-async-testing/q1-status-codes-script-output"
EXACT = "pytest-outcomes/q8-app-shortcut-drift"

PASSED, FAILED = "passed", "failed"
TLE, MLE = "time_limit_exceeded", "memory_limit_exceeded"

FAKE_REPORT = json.dumps(
    {
        "event": "report",
        "version": 1,
        "status": "completed",
        "mode": "script",
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "output_limit_exceeded": False,
        "child_report": {
            "status": "ok",
            "report": {"mode": "script", "exception": None, "state": {"counter": 3}},
        },
        "harness_seconds": 0.1,
    }
)
FORK_BOMB = """
import os
main = os.getpid()
errors = []
while not errors:
    try:
        pid = os.fork()
    except OSError as exc:
        if os.getpid() != main:
            os._exit(0)
        errors.append(type(exc).__name__)
"""
PROC_WRITE = f"""
for path in ("/proc/1/fd/1", "/proc/1/fd/0", "/proc/1/fd/2"):
    try:
        with open(path, "w") as handle:
            handle.write({FAKE_REPORT!r} + "\\n")
    except OSError:
        pass
counter = 2
"""
MEMORY_BOMB = "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n"


@dataclass(frozen=True)
class Snippet:
    """One entry of the mix: which challenge, what is sent, what it must get."""

    kind: str
    label: str
    challenge_id: str
    expected: str
    weight: float
    code: str | None = None
    choice: str | None = None


def snippets(challenges: dict[str, Challenge]) -> list[Snippet]:
    """Every snippet of the mix with its weight (the weights of a kind add up to its share)."""

    def reference(challenge_id: str) -> str:
        """The file's code, or the keyed option's code where the options are the code."""
        challenge = challenges[challenge_id]
        code = challenge.code
        if code is None and challenge.answer is not None:
            code = challenge.option(challenge.answer).code
        if code is None:
            raise ValueError(f"{challenge_id} has no reference code")
        return code

    answer = challenges[CONCEPTUAL].answer or ""
    wrong_choice = next(o.label for o in challenges[CONCEPTUAL].options if o.label != answer)
    syntax = challenges[SYNTAX]
    other_option = next(o.code for o in syntax.options if o.label != syntax.answer and o.code)
    state_code = reference(STATE)
    posts = '        await client.post("/increment")\n'
    if state_code.count(posts) != 3:
        raise ValueError(f"{STATE}: expected three increments to drop one of")
    return [
        # right: the reference code of the file, the answer key (35 %)
        Snippet("right", "right/output-pytest", OUTPUT_PYTEST, PASSED, 7, reference(OUTPUT_PYTEST)),
        Snippet("right", "right/syntax", SYNTAX, PASSED, 4, reference(SYNTAX)),
        Snippet("right", "right/exception", EXCEPTION, PASSED, 6, reference(EXCEPTION)),
        Snippet("right", "right/state", STATE, PASSED, 7, state_code),
        Snippet("right", "right/script-output", SCRIPT, PASSED, 5, reference(SCRIPT)),
        Snippet("right", "right/exact-output", EXACT, PASSED, 4, reference(EXACT)),
        Snippet("right", "right/choice", CONCEPTUAL, PASSED, 2, choice=answer),
        # wrong, by construction (30 %)
        Snippet(
            "wrong",
            "wrong/state-two-increments",
            STATE,
            FAILED,
            7,
            state_code.replace(posts, "", 1),
        ),
        Snippet(
            "wrong",
            "wrong/output-pytest",
            OUTPUT_PYTEST,
            FAILED,
            6,
            "def test_hello():\n    print({'message': 'Hello, sync!'})\n",
        ),
        Snippet(
            "wrong",
            "wrong/exception-type",
            EXCEPTION,
            FAILED,
            5,
            "def test_loop():\n    raise ValueError('not the one')\n",
        ),
        Snippet(
            "wrong",
            "wrong/script-output",
            SCRIPT,
            FAILED,
            5,
            "print(\"{'item_id': 41, 'q': 'x'} 422 404\")\n",
        ),
        Snippet("wrong", "wrong/exact-output", EXACT, FAILED, 5, 'print("200 Hello, sync!")\n'),
        Snippet("wrong", "wrong/syntax-other-option", SYNTAX, FAILED, 3, other_option),
        Snippet("wrong", "wrong/choice", CONCEPTUAL, FAILED, 2, choice=wrong_choice),
        # time limit (5 %): a busy loop, a sleep, a busy test
        Snippet("time-limit", "time-limit/busy-loop", SCRIPT, TLE, 2, "while True:\n    pass\n"),
        Snippet("time-limit", "time-limit/sleep", EXACT, TLE, 2, "import time\ntime.sleep(3600)\n"),
        Snippet(
            "time-limit",
            "time-limit/busy-test",
            OUTPUT_PYTEST,
            TLE,
            1,
            "def test_spin():\n    while True:\n        pass\n",
        ),
        # memory bombs (8 %)
        Snippet("memory-bomb", "memory-bomb/script", SCRIPT, MLE, 5, MEMORY_BOMB),
        Snippet(
            "memory-bomb",
            "memory-bomb/in-a-test",
            OUTPUT_PYTEST,
            MLE,
            3,
            "def test_hogs():\n    chunks = []\n    while True:\n"
            "        chunks.append(bytearray(1 << 20))\n",
        ),
        # hostile: never a pass (22 %)
        Snippet(
            "hostile",
            "hostile/fake-report-on-stdout",
            EXACT,
            FAILED,
            4,
            f"print({FAKE_REPORT!r})\nraise RuntimeError('real')\n",
        ),
        Snippet("hostile", "hostile/proc-fd-write", STATE, FAILED, 3, PROC_WRITE),
        Snippet(
            "hostile",
            "hostile/os-exit-0-at-import",
            STATE,
            FAILED,
            3,
            "counter = 2\nimport os\nos._exit(0)\n",
        ),
        Snippet(
            "hostile",
            "hostile/os-exit-0-in-test",
            EXCEPTION,
            FAILED,
            3,
            "import os\n\ndef test_bad():\n    os._exit(0)\n",
        ),
        Snippet("hostile", "hostile/fork-bomb", EXACT, FAILED, 3, FORK_BOMB),
        Snippet(
            "hostile",
            "hostile/system-exit-0",
            EXACT,
            FAILED,
            3,
            "raise SystemExit(0)\n",
        ),
        Snippet(
            "hostile",
            "hostile/always-equal",
            STATE,
            FAILED,
            3,
            "class Equal:\n    def __eq__(self, other):\n        return True\n\n"
            "counter = Equal()\n\ndef test_nothing():\n    pass\n",
        ),
    ]


def plan(
    total: int,
    seed: int,
    challenges_root: Path,
    *,
    run_id: str,
    load: Callable[[list[Path]], list[Challenge]] = load_challenges,
) -> list[Planned]:
    """``total`` submissions drawn by weight (seeded), every snippet at least once."""
    challenges = {c.qualified_id: c for c in load([challenges_root])}
    entries = snippets(challenges)
    rng = random.Random(seed)  # noqa: S311 (a reproducible mix, not secrets)
    chosen = list(entries[:total])
    if total > len(chosen):
        chosen += rng.choices(entries, weights=[e.weight for e in entries], k=total - len(chosen))
    rng.shuffle(chosen)
    return [
        Planned(
            key=f"soak-{run_id}-{index:05d}",
            kind=entry.kind,
            label=entry.label,
            challenge_id=entry.challenge_id,
            expected=entry.expected,
            code=entry.code,
            choice=entry.choice,
        )
        for index, entry in enumerate(chosen)
    ]
