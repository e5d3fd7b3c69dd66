"""The values the worker, the harness and the Dockerfile must agree on, tied together."""

from __future__ import annotations

import json
import re
import sys
import typing
from pathlib import Path

import pytest

from grader.constants import (
    ENVIRONMENT_DOCKERFILE,
    HARNESS_COMMAND,
    HARNESS_MAX_SUBMISSION_BYTES,
    HARNESS_PROTOCOL_VERSION,
    SANDBOX_UID,
    SANDBOX_WORKDIR,
)
from grader.domain import LearnerCode, Limits, RunMode, RunRequest
from grader.domain.compare import REMOTE_IMPORT_ERROR
from grader.domain.observation import MAX_CASES
from grader.errors import LimitsError
from grader.sandbox.protocol import (
    ChildReport,
    FinalReport,
    HarnessSubmission,
    ReadyEvent,
    harness_argv,
)

IMAGES = Path(__file__).resolve().parents[3] / "images"
sys.path.insert(0, str(IMAGES / "harness"))

from grader_harness import protocol as harness_protocol  # noqa: E402
from grader_harness.jsonstate import type_name  # noqa: E402
from grader_harness.rpc.errors import RemoteImportError  # noqa: E402
from grader_harness.submission import HarnessError, parse_job  # noqa: E402

TEMPLATE = (IMAGES / ENVIRONMENT_DOCKERFILE).read_text(encoding="utf-8")


def _arg_default(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", TEMPLATE, re.MULTILINE)
    assert match is not None, f"{ENVIRONMENT_DOCKERFILE} declares no default for {name}"
    return match[1]


def test_the_harness_accepts_the_submission_line_the_worker_sends() -> None:
    """The harness's own parser reads back every field of ``HarnessSubmission``."""
    request = RunRequest(
        mode=RunMode.PYTEST,
        files={"test_x.py": "def test_a(): pass\n", "pkg/helper.py": "X = '\ud800'\n"},
        entry="test_x.py",
        state=("counter",),
    )
    limits = Limits(wall_seconds=3.5, stdout_bytes=4096, stderr_bytes=8192)
    line = HarnessSubmission.of(request, limits).line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    job = parse_job(json.loads(line))
    assert (job.mode, job.entry, job.files, job.state) == (
        "pytest",
        "test_x.py",
        dict(request.files),
        ["counter"],
    )
    assert (job.wall_seconds, job.stdout_cap, job.stderr_cap) == (3.5, 4096, 8192)


def test_protocol_versions_and_modes_agree() -> None:
    """One protocol version and one set of modes on both sides of the container wall."""
    assert harness_protocol.PROTOCOL_VERSION == HARNESS_PROTOCOL_VERSION
    assert harness_protocol.MAX_SUBMISSION_BYTES == HARNESS_MAX_SUBMISSION_BYTES
    for model in (ReadyEvent, FinalReport):
        assert typing.get_args(model.model_fields["version"].annotation) == (
            HARNESS_PROTOCOL_VERSION,
        )
    assert set(harness_protocol.SUPPORTED_MODES) == {mode.value for mode in RunMode}
    assert ChildReport.model_fields["tests"].metadata[0].max_length == harness_protocol.MAX_TESTS


def test_a_submission_the_harness_would_refuse_is_refused_before_sending() -> None:
    """A submission line over the harness's cap is a LimitsError on our side, not a run."""
    big = RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": "#" * HARNESS_MAX_SUBMISSION_BYTES}, entry="main.py"
    )
    with pytest.raises(LimitsError, match="a run accepts at most 4194304"):
        HarnessSubmission.of(big, Limits()).line()


def test_the_workdir_agrees_everywhere() -> None:
    """The runner's workdir and tmpfs, the harness's workdir and the image's home are one."""
    assert harness_protocol.WORKDIR == SANDBOX_WORKDIR
    assert _arg_default("SANDBOX_WORKDIR") == SANDBOX_WORKDIR


def test_the_image_user_is_the_sandbox_uid() -> None:
    """The image's user is the uid the runner starts containers as."""
    assert _arg_default("SANDBOX_UID") == str(SANDBOX_UID)
    assert "USER ${SANDBOX_UID}:${SANDBOX_UID}" in TEMPLATE


def test_the_image_entrypoint_is_the_harness_command() -> None:
    """The runner's command and the image's entry point start the same harness."""
    match = re.search(r"^ENTRYPOINT (\[.*\])$", TEMPLATE, re.MULTILINE)
    assert match is not None
    assert tuple(json.loads(match[1])) == HARNESS_COMMAND
    assert harness_argv(("fastapi",)) == [*HARNESS_COMMAND, "--preimport", "fastapi"]
    assert harness_argv(()) == [*HARNESS_COMMAND, "--preimport"]


def test_the_remote_import_error_the_domain_recognises_is_the_harness_class() -> None:
    """``compare`` shows a learner's failed import by this class's qualified name."""
    assert type_name(RemoteImportError) == REMOTE_IMPORT_ERROR


def test_the_isolated_submission_lines_parse_in_the_harness() -> None:
    """The judge's and the learner's lines of an isolated run are valid jobs for the harness."""
    request = RunRequest(
        mode=RunMode.PYTEST,
        files={"test_x.py": "def test_a(): pass\n"},
        entry="test_x.py",
        learner=LearnerCode(files={"solution.py": "x = 1\n"}, modules=("solution",)),
    )
    judge = parse_job(json.loads(HarnessSubmission.of(request, Limits()).line()))
    learner = parse_job(json.loads(HarnessSubmission.serving(request, Limits()).line()))
    assert (judge.mode, judge.modules, sorted(judge.files)) == (
        "judge",
        ["solution"],
        ["test_x.py"],
    )
    assert (learner.mode, learner.modules, learner.files) == (
        "serve",
        ["solution"],
        {"solution.py": "x = 1\n"},
    )


def test_stdin_and_cases_travel_to_the_harness() -> None:
    """The harness reads a run's stdin, and a cases run's stdins, from the worker's line."""
    with_stdin = RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": "input()"}, entry="main.py", stdin="a\nb\n"
    )
    job = parse_job(json.loads(HarnessSubmission.of(with_stdin, Limits()).line()))
    assert (job.stdin, job.cases) == ("a\nb\n", [])
    cases = RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": "input()"}, entry="main.py", cases=("1", "", "3")
    )
    job = parse_job(json.loads(HarnessSubmission.of(cases, Limits()).line()))
    assert (job.stdin, job.cases) == ("", ["1", "", "3"])


def test_both_sides_cap_cases_alike() -> None:
    """The worker's schema and the harness refuse the same number of cases."""
    assert harness_protocol.MAX_CASES == MAX_CASES


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "pytest", "cases": ["1"]}, "cases run in script mode"),
        ({"stdin": "x", "cases": ["1"]}, "cases run in script mode"),
        ({"cases": ["1"] * 51}, "at most 50 cases"),
        ({"cases": [1]}, "cases must be a list of strings"),
        ({"stdin": 5}, "stdin must be a string"),
    ],
)
def test_the_harness_refuses_malformed_stdin_and_cases(
    changes: dict[str, object], message: str
) -> None:
    """Checked in the container too, whatever the worker sent."""
    line = {
        "version": 1,
        "mode": "script",
        "entry": "main.py",
        "files": {"main.py": ""},
        "state": [],
        "limits": {},
        **changes,
    }
    with pytest.raises(HarnessError, match=message):
        parse_job(line)
