"""``grader submit|run|result`` against a scripted API: what they print and their exit codes
(0 passed, 1 failed, 2 error, 3 unreachable, 4 not finished)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from grader.cli import app, remote
from grader.client import Client, RetryPolicy
from grader.domain.submission import SubmissionStatus
from grader.domain.verdict import VerdictStatus
from tests.grader.client.support import (
    CHALLENGE,
    ENV,
    ScriptedApi,
    error,
    observation,
    ok,
    run_record,
    submission,
)


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> ScriptedApi:
    """The API the commands talk to; fill ``answers.answers`` before invoking."""
    api = ScriptedApi([])

    @contextmanager
    def scripted(url: str, key: str | None) -> Iterator[Client]:
        retry = RetryPolicy(attempts=2)
        with Client(url, key, transport=api.sync(), retry=retry, sleep=lambda _: None) as c:
            yield c

    monkeypatch.setattr(remote, "_api", scripted)
    return api


@pytest.fixture
def snippet(tmp_path: Path) -> Path:
    path = tmp_path / "answer.py"
    path.write_text("print(2)\n")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"GRADER_API_KEY": "grd_k"})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("verdict", "code"),
    [
        (VerdictStatus.PASSED, 0),
        (VerdictStatus.FAILED, 1),
        (VerdictStatus.TIME_LIMIT_EXCEEDED, 1),
        (VerdictStatus.ERROR, 1),
        (VerdictStatus.SANDBOX_ERROR, 2),
    ],
)
def test_submit_wait_exits_with_the_verdict(
    answers: ScriptedApi, snippet: Path, verdict: VerdictStatus, code: int
) -> None:
    """--wait: the final submission on stdout, the verdict on stderr, its exit code."""
    status = SubmissionStatus.FAILED if verdict is VerdictStatus.SANDBOX_ERROR else None
    answers.answers = [ok(submission(status or SubmissionStatus.DONE, verdict))]
    exit_code, out, err = invoke("submit", str(snippet), "-c", CHALLENGE, "--wait")
    assert exit_code == code
    assert json.loads(out)["result"]["status"] == verdict.value
    assert err.startswith(f"{verdict.value}: because")
    (request,) = answers.requests
    assert json.loads(request.content) == {"challenge_id": CHALLENGE, "code": "print(2)\n"}
    assert request.headers["Authorization"] == "Bearer grd_k"
    assert request.url.params["wait"] == "30.0"


def test_submit_without_wait_exits_0_once_accepted(answers: ScriptedApi, snippet: Path) -> None:
    """Without --wait the queued submission is printed and the command exits 0."""
    answers.answers = [ok(submission(), 202)]
    exit_code, out, err = invoke("submit", str(snippet), "--challenge", CHALLENGE)
    assert (exit_code, json.loads(out)["status"]) == (0, "queued")
    assert err.strip() == "accepted: s1 (queued)"


def test_submit_wait_with_a_timeout_that_runs_out_exits_4(
    answers: ScriptedApi, snippet: Path
) -> None:
    """--wait --timeout 0: still queued, so 'not finished' and exit 4."""
    answers.answers = [ok(submission(), 202)]
    exit_code, _, err = invoke("submit", str(snippet), "-c", CHALLENGE, "--wait", "--timeout", "0")
    assert exit_code == 4
    assert err.strip() == "not finished: s1 is queued"


def test_a_refused_request_exits_2_with_the_apis_message(
    answers: ScriptedApi, snippet: Path
) -> None:
    """A 404 from the API: exit 2, its code and message on stderr, nothing on stdout."""
    answers.answers = [error(404, "not_found", "no challenge 'a/b'")]
    exit_code, out, err = invoke("submit", str(snippet), "-c", "a/b")
    assert (exit_code, out) == (2, "")
    assert err.strip() == "not_found: HTTP 404: no challenge 'a/b'"


def test_no_answer_exits_3(answers: ScriptedApi, snippet: Path) -> None:
    """Refused connections through every retry: exit 3, 'unreachable'; so is a lasting 503."""
    request = httpx.Request("POST", "http://127.0.0.1:8000/v1/submissions")
    answers.answers = [httpx.ConnectError("refused", request=request)] * 2
    exit_code, _, err = invoke("submit", str(snippet), "-c", CHALLENGE)
    assert exit_code == 3
    assert err.startswith("unreachable: no answer from http://127.0.0.1:8000: ConnectError")
    answers.answers = [error(503, "unavailable", "retry shortly")] * 2
    assert invoke("result", "s1")[0] == 3


def test_usage_errors_exit_2(answers: ScriptedApi, snippet: Path, tmp_path: Path) -> None:
    """No challenge, code and a choice together, or an unreadable file: exit 2, no request."""
    assert invoke("submit", str(snippet))[0] == 2
    assert invoke("submit", str(snippet), "-c", CHALLENGE, "--choice", "B")[0] == 2
    exit_code, _, err = invoke("submit", str(tmp_path / "missing.py"), "-c", CHALLENGE)
    assert exit_code == 2 and "cannot read" in err
    assert answers.requests == []


def test_submit_a_choice(answers: ScriptedApi) -> None:
    """--choice sends the label instead of code."""
    answers.answers = [ok(submission(SubmissionStatus.DONE, VerdictStatus.PASSED))]
    assert invoke("submit", "-c", CHALLENGE, "--choice", "B", "--wait")[0] == 0
    assert json.loads(answers.requests[0].content) == {"challenge_id": CHALLENGE, "choice": "B"}


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (run_record("done"), 0),
        (run_record("done", observation=observation(exit_code=3).model_dump(mode="json")), 1),
        (
            run_record(
                "done",
                observation=observation(status="time_limit_exceeded", exit_code=None).model_dump(
                    mode="json"
                ),
            ),
            1,
        ),
        (
            run_record(
                "done",
                observation=observation(status="sandbox_error", error="engine").model_dump(
                    mode="json"
                ),
            ),
            2,
        ),
        (run_record("failed", error="could not run"), 2),
        (run_record("running"), 4),
    ],
)
def test_run_exits_with_how_the_run_ended(
    answers: ScriptedApi, snippet: Path, record: dict[str, object], code: int
) -> None:
    """0 completed with exit code 0; 1 another exit code or a limit; 2 ours; 4 unfinished."""
    answers.answers = [ok(record)]
    args = ("run", str(snippet), "--env", ENV, "--timeout", "0")
    exit_code, out, _ = invoke(*args)
    assert exit_code == code
    assert json.loads(out)["id"] == "r1"
    body = json.loads(answers.requests[0].content)
    assert body == {
        "environment": ENV,
        "files": {"answer.py": "print(2)\n"},
        "entry": "answer.py",
        "mode": "script",
    }


def test_run_in_pytest_mode_with_stdin_and_another_file(
    answers: ScriptedApi, snippet: Path, tmp_path: Path
) -> None:
    """--mode pytest, --stdin FILE and --file FILE go into the run's body."""
    (tmp_path / "input.txt").write_text("3\n")
    (tmp_path / "helper.py").write_text("X = 1\n")
    answers.answers = [ok(run_record("done"))]
    exit_code, _, _ = invoke(
        "run",
        str(snippet),
        "-e",
        ENV,
        "--mode",
        "pytest",
        "--stdin",
        str(tmp_path / "input.txt"),
        "--file",
        str(tmp_path / "helper.py"),
    )
    assert exit_code == 0
    body = json.loads(answers.requests[0].content)
    assert (body["mode"], body["stdin"]) == ("pytest", "3\n")
    assert body["files"] == {"answer.py": "print(2)\n", "helper.py": "X = 1\n"}


def test_result_in_a_format_prints_that_document_and_exits_with_the_verdict(
    answers: ScriptedApi,
) -> None:
    """result --format gradescope: the verdict decides the exit code, stdout is the document."""
    document = {"score": 0.0, "output": "failed"}
    answers.answers = [ok(submission(SubmissionStatus.DONE, VerdictStatus.FAILED)), ok(document)]
    exit_code, out, _ = invoke("result", "s1", "--format", "gradescope")
    assert (exit_code, json.loads(out)) == (1, document)
    assert answers.params() == [{}, {"format": "gradescope"}]


def test_result_of_an_unfinished_submission_exits_4(answers: ScriptedApi) -> None:
    """Not final: the grader record is printed (no format to show yet), exit 4."""
    answers.answers = [ok(submission(SubmissionStatus.RUNNING))]
    exit_code, out, _ = invoke("result", "s1", "--format", "prairielearn")
    assert (exit_code, json.loads(out)["status"]) == (4, "running")
    assert len(answers.requests) == 1
