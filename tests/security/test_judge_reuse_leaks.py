"""A reused judge carries nothing from one learner's run into the next.

Every case of ``test_cant_forge_hidden_tests`` runs here again, unchanged, against a sandbox
whose judges are reused (the default). Here every suite shares one tenant (``suite_of`` is
patched), so that after each case the judge it used, when kept, then runs a probe suite: the
probe (``reuse_probe.py``) runs inside a hidden test of that same judge container and must see
exactly what it sees in a pristine judge's first run: files in every writable mount,
processes, threads, descriptors, environment, modules and their namespaces, rlimits, signal
dispositions, process status, SysV and POSIX IPC, sockets, and the memory cgroup's usage
(within 16 MiB). Sharing one tenant is stricter than production, where a judge serves one
suite only. A case's judge that was not kept must be gone from the engine.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any, cast

import pytest

from grader.domain import Limits, Observation, RunRequest, TestOutcome
from grader.domain.challenge import Expectation
from grader.domain.grading import request_for
from grader.domain.hidden import TestsExpectation
from grader.sandbox import DockerSandbox
from grader.settings import ReuseSettings, Settings
from tests.conftest import GVISOR, OLD_ENV, Runner
from tests.security import test_cant_forge_hidden_tests
from tests.security.reuse_probe import PROBE
from tests.security.test_cant_forge_hidden_tests import PLAIN, RIGHT_PLAIN

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(GVISOR, reason="judges are never reused with runtime runsc (reuse.py)"),
]

MEMORY_SLACK = 16 * 1024 * 1024
ONE_TENANT = "suite:every-suite-of-this-module"
_CASES = {
    name: case
    for name, case in vars(test_cant_forge_hidden_tests).items()
    if name.startswith("test_") and callable(case)
}
globals().update(_CASES)  # pytest collects them here, with this module's fixtures

JUDGE_PROBE = (
    textwrap.dedent('''
    """The probe, as a hidden test: a digest of what the judge's process sees, and memory."""
    import contextlib, hashlib, io

    from solution import add

    PROBE = {probe!r}


    def test_probe():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(PROBE, "/sandbox/main.py", "exec"), {{"__name__": "probe"}})
        snapshot, memory = out.getvalue().splitlines()
        print(hashlib.sha256(snapshot.encode()).hexdigest(), memory)
        print(snapshot[:6000])
        assert add(1, 2) == 3
''')
    .lstrip()
    .format(probe=PROBE)
)
PROBE_SUITE = PLAIN.model_copy(
    update={"expectation": Expectation(tests=TestsExpectation(code=JUDGE_PROBE))}
)
PROBE_LIMITS = Limits(wall_seconds=20)


def judging_sandbox(settings: Settings) -> DockerSandbox:
    reuse = ReuseSettings(judges=True, max_runs=10_000, max_age_seconds=3600, idle_per_key=1)
    config = settings.sandbox.model_copy(update={"reuse": reuse})
    return DockerSandbox.from_settings(config, repository=settings.images.repository)


def probe_request() -> RunRequest:
    expectation = PROBE_SUITE.expectation_for(OLD_ENV)
    assert expectation is not None
    return request_for(PROBE_SUITE, RIGHT_PLAIN, expectation)


def probed(obs: Observation) -> tuple[str, int, str]:
    """The probe's digest, the memory cgroup's usage it read, and the snapshot's start."""
    (test,) = obs.tests
    assert test.outcome is TestOutcome.PASSED, (test.message, test.stdout[-2000:])
    first, _, rest = test.stdout.partition("\n")
    digest, memory = first.split()
    return digest, int(memory), rest


class ProbingJudges:
    """A sandbox with reused judges that follows every isolated run with the probe suite."""

    def __init__(self, inner: DockerSandbox, fresh: DockerSandbox) -> None:
        self.inner = inner
        self._fresh = fresh
        self._baseline: tuple[str, int, str] | None = None
        self.kept = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run(self, environment: str, request: RunRequest, limits: Limits) -> Observation:
        obs = self.inner.run(environment, request, limits)
        self.settle()
        kept = self.inner.judges.idle_ids()
        if request.learner is not None and kept and environment == OLD_ENV:
            self.kept += 1
            self._probe_same_judge(kept)
        # Only a waiting judge is left: the learner's container and any judge not kept are gone.
        assert self.inner.count_containers(owner=self.inner.owner) == len(kept)
        return obs

    def settle(self) -> None:
        self.inner.judges.wait_settled()
        self.inner.drain_removals()

    def _probe_same_judge(self, kept: set[str]) -> None:
        seen = probed(self.inner.run(OLD_ENV, probe_request(), PROBE_LIMITS))
        self.settle()
        assert self.inner.judges.idle_ids() == kept, "the probe did not run in the kept judge"
        expected = self._pristine()
        assert seen[0] == expected[0], (seen[2], expected[2])
        assert seen[1] <= expected[1] + MEMORY_SLACK, f"memory {seen[1]} vs fresh {expected[1]}"

    def _pristine(self) -> tuple[str, int, str]:
        """The probe's view in a judge's first run."""
        if self._baseline is None:
            self._baseline = probed(self._fresh.run(OLD_ENV, probe_request(), PROBE_LIMITS))
            self._fresh.judges.wait_settled()
        return self._baseline


@pytest.fixture(scope="module")
def judging(settings: Settings, built_environments: list[str]) -> Iterator[ProbingJudges]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("grader.sandbox.isolated.suite_of", lambda _line: ONE_TENANT)
        inner, fresh = judging_sandbox(settings), judging_sandbox(settings)
        try:
            yield ProbingJudges(inner, fresh)
        finally:
            for sandbox in (inner, fresh):
                sandbox.close()
                assert sandbox.count_containers(owner=sandbox.owner) == 0


@pytest.fixture(scope="module")
def run(judging: ProbingJudges) -> Runner:
    """The hidden-tests suite's runner, on the probing sandbox."""
    return Runner(cast(DockerSandbox, judging))


def test_a_kept_judge_is_probed_and_a_fresh_probe_is_the_baseline(judging: ProbingJudges) -> None:
    """The probe itself: a judge kept after the probe sees what a pristine judge saw."""
    judging.run(OLD_ENV, probe_request(), PROBE_LIMITS)
    assert judging.kept >= 1
    assert judging.inner.judges.recycled >= 2
