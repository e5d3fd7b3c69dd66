"""Pytest outcomes, warnings, per-environment truths and flakiness through the real sandbox.

Every challenge of ``challenges/pytest-outcomes`` runs in both environment images: its own
code, a right answer and a wrong answer, each graded with ``compare`` against the truth
recorded for that environment; and ``grader challenges validate`` refuses a flaky challenge.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.domain import Limits, Observation, RunMode, RunRequest, TestOutcome
from grader.domain.challenge import Challenge
from grader.domain.compare import compare, grade_choice
from grader.domain.grading import request_for
from grader.domain.loader import load_challenges
from tests.conftest import NEW_ENV, OLD_ENV, Runner

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SET = ROOT / "challenges" / "pytest-outcomes"
CHALLENGES = {c.id: c for c in load_challenges([SET], [OLD_ENV, NEW_ENV])}


def observe(run: Runner, env: str, request: RunRequest) -> Observation:
    try:
        return run.sandbox.run(env, request, Limits())
    finally:
        run.sandbox.drain_removals()


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# A right and a wrong answer per challenge: right meets the truth of both environments (which
# differ for q1, q3, q4 and q8), wrong meets neither.
ANSWERS: dict[str, tuple[str, str]] = {
    "q1-unmarked-async-test": (
        code("""
            import asyncio


            async def test_ping():
                await asyncio.sleep(0)
            """),
        code("""
            import asyncio

            import pytest


            @pytest.mark.asyncio
            async def test_ping():
                await asyncio.sleep(0)
            """),
    ),
    "q2-coroutine-never-awaited": (
        code("""
            import asyncio

            import pytest

            log = []


            async def record(name):
                log.append(name)
                await asyncio.sleep(0)


            @pytest.mark.asyncio
            async def test_records():
                record("first")
                assert log == []
            """),
        code("""
            import asyncio

            import pytest

            log = []


            async def record(name):
                log.append(name)
                await asyncio.sleep(0)


            @pytest.mark.asyncio
            async def test_records():
                await record("first")
                assert log == ["first"]
            """),
    ),
    "q3-async-fixture-in-sync-test": (
        code("""
            import pytest


            @pytest.fixture
            async def token():
                return "other"


            def test_token(token):
                assert token == "other"
            """),
        code("""
            import pytest
            import pytest_asyncio


            @pytest_asyncio.fixture
            async def token():
                return "secret"


            def test_token(token):
                assert token == "secret"
            """),
    ),
    "q4-event-loop-fixture": (
        code("""
            import pytest


            @pytest.mark.asyncio
            async def test_same_loop(event_loop):
                print(event_loop.is_running())
            """),
        code("""
            import asyncio

            import pytest


            @pytest.mark.asyncio
            async def test_same_loop():
                print(asyncio.get_running_loop() is None)
            """),
    ),
    "q5-xfail-that-passes": (
        code("""
            import pytest


            @pytest.mark.xfail(reason="there is no route for /items without the slash")
            def test_items_without_slash():
                assert True


            @pytest.mark.xfail(reason="there is no route for /items without the slash", strict=True)
            def test_items_without_slash_strict():
                assert True
            """),
        code("""
            import pytest


            @pytest.mark.xfail(reason="there is no route for /items without the slash")
            def test_items_without_slash():
                assert True


            @pytest.mark.xfail(reason="there is no route for /items without the slash")
            def test_items_without_slash_strict():
                assert True
            """),
    ),
    "q6-collection-error": (
        code("""
            import pytest


            @pytest.mark.parametrize("item_id", [1, 2, 3])
            def test_read_item(item):
                assert item
            """),
        code("""
            import pytest


            @pytest.mark.parametrize("item_id", [1, 2, 3])
            def test_read_item(item_id):
                assert item_id
            """),
    ),
    "q7-warnings-as-errors": (
        code("""
            import asyncio

            import pytest


            async def record(name):
                await asyncio.sleep(0)


            @pytest.mark.asyncio
            async def test_records():
                record("first")
            """),
        code("""
            import asyncio

            import pytest


            async def record(name):
                await asyncio.sleep(0)


            @pytest.mark.asyncio
            async def test_records():
                await record("first")
            """),
    ),
    "q8-app-shortcut-drift": (
        code("""
            import asyncio

            import httpx
            from fastapi import FastAPI

            app = FastAPI()


            @app.get("/hello")
            async def hello():
                return {"message": "Hello, async!"}


            async def main():
                client = httpx.AsyncClient(app=app, base_url="http://test")
                response = await client.get("/hello")
                await client.aclose()
                print(response.status_code, response.json()["message"])


            asyncio.run(main())
            """),
        code("""
            import asyncio

            import httpx
            from fastapi import FastAPI

            app = FastAPI()


            @app.get("/hello")
            async def hello():
                return {"message": "Hello, async!"}


            async def main():
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                    response = await c.get("/hello")
                print(response.status_code, response.json())


            asyncio.run(main())
            """),
    ),
}


def test_every_challenge_of_the_set_has_answers() -> None:
    """The table below covers exactly the set's challenges (at least the six asked for)."""
    assert set(ANSWERS) == set(CHALLENGES)
    assert len(CHALLENGES) >= 6


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_code_right_and_wrong_answers_are_graded_against_the_environments_truth(
    run: Runner, name: str, env: str
) -> None:
    """The code and a right answer pass, a wrong answer fails, against that env's truth."""
    challenge: Challenge = CHALLENGES[name]
    truth = challenge.expectation_for(env)
    assert truth is not None and challenge.code is not None
    right, wrong = ANSWERS[name]
    verdicts = {}
    for label, snippet in (("code", challenge.code), ("right", right), ("wrong", wrong)):
        observation = observe(run, env, request_for(challenge, snippet, truth))
        verdicts[label] = compare(challenge.kind, truth, observation)
    assert (verdicts["code"].passed, verdicts["right"].passed, verdicts["wrong"].passed) == (
        True,
        True,
        False,
    ), {label: verdict.reason for label, verdict in verdicts.items()}
    assert grade_choice(challenge, challenge.answer or "").passed
    other = next(o.label for o in challenge.options if o.label != challenge.answer)
    assert not grade_choice(challenge, other).passed


CATALOGUE = code("""
    import pytest


    @pytest.mark.skip(reason="not today")
    def test_skip():
        pass


    @pytest.mark.xfail(reason="known bug")
    def test_xfail():
        assert 1 == 2


    @pytest.mark.xfail(reason="fixed already")
    def test_xpass():
        pass


    @pytest.mark.xfail(reason="strict one", strict=True)
    def test_xpass_strict():
        pass


    @pytest.fixture
    def broken_teardown():
        yield
        raise RuntimeError("teardown boom")


    def test_teardown(broken_teardown):
        pass


    @pytest.fixture
    async def plain_async():
        return 1


    def test_async_fixture(plain_async):
        assert plain_async == 1
    """)


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_the_harness_reports_what_pytest_reports(run: Runner, env: str) -> None:
    """Skip and xfail reasons, strict xpass, setup and teardown errors and pytest's counts."""
    observation = run.pytest(CATALOGUE, env=env)
    tests = {t.nodeid.split("::")[1]: (t.outcome, t.when, t.message) for t in observation.tests}
    assert tests["test_skip"] == (TestOutcome.SKIPPED, "setup", "not today")
    assert tests["test_xfail"] == (TestOutcome.XFAILED, "call", "known bug")
    assert tests["test_xpass"] == (TestOutcome.XPASSED, "call", "fixed already")
    assert tests["test_xpass_strict"] == (TestOutcome.FAILED, "call", "[XPASS(strict)] strict one")
    assert tests["test_teardown"] == (TestOutcome.ERROR, "teardown", "RuntimeError: teardown boom")
    outcome, when, message = tests["test_async_fixture"]
    if env == OLD_ENV:  # pytest 8.3 hands the coroutine object to the test
        assert (outcome, when) == (TestOutcome.FAILED, "call")
        assert "assert <coroutine object plain_async at 0x" in (message or "")
        counts = {"failed": 2, "passed": 1, "skipped": 1, "xfailed": 1, "xpassed": 1, "error": 1}
    else:  # pytest 9 refuses it while setting the test up
        assert (outcome, when) == (TestOutcome.ERROR, "setup")
        assert (message or "").startswith(
            "Failed: 'test_async_fixture' requested an async fixture 'plain_async'"
        )
        counts = {"failed": 1, "passed": 1, "skipped": 1, "xfailed": 1, "xpassed": 1, "error": 2}
    assert observation.pytest_summary == counts
    assert observation.exit_code == 1


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_a_collection_error_is_reported_with_the_import_error(run: Runner, env: str) -> None:
    """The ImportError behind pytest's collection error, with its line in the snippet."""
    observation = run.pytest("import pytest\nimport no_such_module\n", env=env)
    (error,) = observation.collection_errors
    assert error.exception is not None
    assert (error.exception.type, error.exception.message, error.exception.line) == (
        "ModuleNotFoundError",
        "No module named 'no_such_module'",
        2,
    )
    assert observation.pytest_summary == {"error": 1}
    assert (observation.tests, observation.exit_code) == ((), 2)


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_a_scripts_warnings_are_data_and_can_be_escalated(run: Runner, env: str) -> None:
    """A script's warning has category, message and line; ``-W error`` makes it the exception."""
    snippet = "import warnings\n\nwarnings.warn('old API', DeprecationWarning)\nprint('done')\n"
    request = RunRequest(mode=RunMode.SCRIPT, files={"main.py": snippet}, entry="main.py")
    shown = observe(run, env, request)
    assert [(w.category, w.message, w.line) for w in shown.warnings] == [
        ("DeprecationWarning", "old API", 3)
    ]
    assert (shown.stdout.text, shown.exit_code) == ("done\n", 0)
    escalated = observe(run, env, request.model_copy(update={"filterwarnings": ("error",)}))
    assert escalated.exception is not None
    assert (escalated.exception.type, escalated.exception.line) == ("DeprecationWarning", 3)
    assert (escalated.stdout.text, escalated.warnings, escalated.exit_code) == ("", (), 1)


FLAKY = """\
title: A random number
kind: output
prompt: What does it print?
environment: fastapi-0.115-httpx-0.27
code: |
  import random

  print(random.random())
expectation:
  output:
    match: regex
    stdout: "0\\\\.\\\\d+\\\\n"
"""


def test_validate_refuses_a_flaky_challenge(built_environments: list[str], tmp_path: Path) -> None:
    """Its expectation holds in every run, but the output differs: refused, naming stdout."""
    folder = tmp_path / "flaky"
    folder.mkdir()
    (folder / "random-number.yaml").write_text(FLAKY)
    result = CliRunner().invoke(app, ["challenges", "validate", str(folder), "--json"])
    assert result.exit_code == 1, result.output
    (report,) = json.loads(result.stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["code meets the expectation"]["ok"] is True
    flaky = checks["the same outcome in every run"]
    assert (flaky["ok"], flaky["environment"]) == (False, OLD_ENV)
    assert flaky["detail"].startswith("the code: run 1 and run 2 of 3 differ in stdout '0.")


def test_one_run_cannot_see_the_flakiness(built_environments: list[str], tmp_path: Path) -> None:
    """With ``--runs 1`` the same challenge validates: the repeat is what catches it."""
    folder = tmp_path / "flaky"
    folder.mkdir()
    (folder / "random-number.yaml").write_text(FLAKY)
    result = CliRunner().invoke(app, ["challenges", "validate", str(folder), "--runs", "1"])
    assert result.exit_code == 0, result.output
    assert "1/1 challenges valid (each code and code option run once)" in result.stdout


def test_the_matrix_shows_truths_of_different_kinds(built_environments: list[str]) -> None:
    """Q8's truths side by side: output with httpx 0.27, a TypeError with httpx 0.28."""
    path = SET / "q8-app-shortcut-drift.yaml"
    result = CliRunner().invoke(app, ["challenges", "matrix", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    cells = {c["environment"]: c for c in row["cells"]}
    assert (cells[OLD_ENV]["kind"], cells[OLD_ENV]["expected"]) == ("output", True)
    assert (cells[NEW_ENV]["kind"], cells[NEW_ENV]["expected"]) == ("exception", True)
    assert cells[OLD_ENV]["outcome"] == "ok, printed '200 Hello, async!'"
    assert cells[NEW_ENV]["outcome"].startswith("TypeError: AsyncClient.__init__()")
    assert row["differs"] is True
