"""Reused judges: an isolated run's judge container, restored and verified, serves its suite again.

Through the real engine and images: a suite's judge takes that suite's next run and never
another suite's; what a run's hidden tests leave (files, processes, module state) is gone
before the next; a judge whose run did not end plainly is removed; with ``judges=false`` every
judge is fresh. The adversarial cases run against reused judges in
``tests/security/test_judge_reuse_leaks.py``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from grader.domain import Limits, Verdict, VerdictStatus
from grader.domain.challenge import Challenge, Expectation
from grader.domain.compare import compare
from grader.domain.grading import request_for
from grader.domain.hidden import TestsExpectation
from grader.sandbox import DockerSandbox, PreimportProfile
from grader.settings import ReuseSettings, Settings
from tests.conftest import OLD_ENV
from tests.security.test_cant_forge_hidden_tests import PLAIN, RIGHT_PLAIN, WRONG_PLAIN

pytestmark = pytest.mark.docker

LIMITS = Limits(wall_seconds=10)
CLEAN_SLATE = textwrap.dedent('''
    """Fails when anything an earlier run of these tests left is still there."""
    import builtins, os, subprocess, sys

    from solution import add

    MARK = "left-by-an-earlier-run"


    def left_processes():
        found = []
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if MARK.encode() in handle.read():
                        found.append(pid)
            except OSError:
                pass
        return found


    def test_nothing_is_left_then_leave_everything():
        left = [p for p in ("/tmp/" + MARK, "/dev/shm/" + MARK, "/sandbox/" + MARK)
                if os.path.exists(p)]
        assert left == []
        assert not hasattr(builtins, "left_by_an_earlier_run")
        assert "left_by_an_earlier_run" not in sys.modules
        assert left_processes() == []
        for path in ("/tmp/" + MARK, "/dev/shm/" + MARK, "/sandbox/" + MARK):
            with open(path, "w") as handle:
                handle.write("x")
        builtins.left_by_an_earlier_run = True
        sys.modules["left_by_an_earlier_run"] = sys
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)", MARK], start_new_session=True
        )
        assert left_processes() != []


    def test_the_learner_is_asked():
        assert add(1, 2) == 3
''')
SLOW = "from solution import add\n\n\ndef test_slow():\n    import time\n    time.sleep(60)\n"


def suite(code: str) -> Challenge:
    return PLAIN.model_copy(update={"expectation": Expectation(tests=TestsExpectation(code=code))})


def sandbox_with(settings: Settings, *, judges: bool) -> DockerSandbox:
    reuse = ReuseSettings(judges=judges, max_runs=100, max_age_seconds=600, idle_per_key=1)
    config = settings.sandbox.model_copy(update={"reuse": reuse})
    return DockerSandbox.from_settings(config, repository=settings.images.repository)


@pytest.fixture
def box(settings: Settings, built_environments: list[str]) -> Iterator[DockerSandbox]:
    created = sandbox_with(settings, judges=True)
    yield created
    created.close()
    assert created.count_containers(owner=created.owner) == 0


def grade(box: DockerSandbox, challenge: Challenge, code: str, limits: Limits = LIMITS) -> Verdict:
    expectation = challenge.expectation_for(OLD_ENV)
    assert expectation is not None
    request = request_for(challenge, code, expectation)
    assert request.learner is not None
    observation = box.run(OLD_ENV, request, limits)
    box.judges.wait_settled()
    box.drain_removals()
    return compare(challenge.kind, expectation, observation)


def test_a_suites_judge_serves_its_next_runs_and_each_verdict_is_its_own(
    box: DockerSandbox,
) -> None:
    """One judge grades right, wrong, right in turn; the learners' containers are all gone."""
    judges: list[set[str]] = []
    statuses = []
    for code in (RIGHT_PLAIN, WRONG_PLAIN, RIGHT_PLAIN):
        statuses.append(grade(box, PLAIN, code).status)
        judges.append(box.judges.idle_ids())
    assert statuses == [VerdictStatus.PASSED, VerdictStatus.FAILED, VerdictStatus.PASSED]
    assert len(judges[0]) == 1 and judges[0] == judges[1] == judges[2]
    assert box.judges.recycled == 3
    assert box.count_containers(owner=box.owner) == 1  # the judge, waiting; no learner left


def test_what_hidden_tests_leave_is_gone_before_the_next_run_in_the_same_judge(
    box: DockerSandbox,
) -> None:
    """Files in every writable mount, a daemon, module state: the second run sees none."""
    challenge = suite(CLEAN_SLATE)
    first = grade(box, challenge, RIGHT_PLAIN)
    kept = box.judges.idle_ids()
    second = grade(box, challenge, RIGHT_PLAIN)
    assert first.status is VerdictStatus.PASSED, first.tests
    assert second.status is VerdictStatus.PASSED, second.tests
    assert len(kept) == 1 and box.judges.idle_ids() == kept  # the same judge, kept again


def test_another_suite_never_gets_a_used_judge(box: DockerSandbox) -> None:
    """A judge serves one suite only: another suite's run takes a judge of its own."""
    assert grade(box, PLAIN, RIGHT_PLAIN).status is VerdictStatus.PASSED
    first = box.judges.idle_ids()
    assert grade(box, suite(CLEAN_SLATE), RIGHT_PLAIN).status is VerdictStatus.PASSED
    both = box.judges.idle_ids()
    assert len(first) == 1 and len(both) == 2 and first < both


def test_a_judge_past_its_time_limit_is_removed(box: DockerSandbox) -> None:
    """Hidden tests that run out of time end their judge: it is never kept."""
    verdict = grade(box, suite(SLOW), RIGHT_PLAIN, Limits(wall_seconds=2))
    assert verdict.status is VerdictStatus.TIME_LIMIT_EXCEEDED
    assert box.judges.idle_count() == 0
    assert box.count_containers(owner=box.owner) == 0


def test_with_judges_off_every_judge_is_fresh(
    settings: Settings, built_environments: list[str]
) -> None:
    """``judges=false``: both containers of every isolated run are removed after it."""
    strict = sandbox_with(settings, judges=False)
    try:
        graded = ((RIGHT_PLAIN, VerdictStatus.PASSED), (WRONG_PLAIN, VerdictStatus.FAILED))
        for code, status in graded:
            assert grade(strict, PLAIN, code).status is status
            assert strict.judges.idle_count() == 0
            assert strict.count_containers(owner=strict.owner) == 0
        assert strict.judges.recycled == 0
    finally:
        strict.close()


def test_the_warm_pool_keeps_judges_ready_when_judges_are_reused(box: DockerSandbox) -> None:
    """The pool has a ``judge`` key: the first run of a suite takes a warm, reusable judge."""
    pool = box.start_pool([OLD_ENV], size=1, limits=LIMITS)
    assert pool.wait_until_full(180)
    warm = {key for key in [(OLD_ENV, p) for p in PreimportProfile] if pool.ready_count(key)}
    assert warm == {(OLD_ENV, p) for p in PreimportProfile}
    expectation = PLAIN.expectation_for(OLD_ENV)
    assert expectation is not None
    observation = box.run(OLD_ENV, request_for(PLAIN, RIGHT_PLAIN, expectation), LIMITS)
    assert observation.pool_hit is True
    assert box.judges.wait_settled()
    assert box.judges.recycled == 1
