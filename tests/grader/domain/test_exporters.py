"""Exporters: every rung of the verdict ladder in every format, against committed golden files.

Each case of ``exporter_cases.CASES`` is rendered in each format and compared byte for byte
with ``golden/<case>.<format>.json`` (``json.dumps(..., indent=2, ensure_ascii=False)`` plus a
newline, keys in the order the exporter emits them). A document the format cannot have is the
API's error body instead (``{"error": {"code": ..., "message": ...}}``).

To regenerate the golden files after a deliberate change, run

    GRADER_REGENERATE_GOLDENS=1 .venv/bin/python -m pytest tests/grader/domain/test_exporters.py

and review the diff before committing it. Each document is also validated against the rules
of its format's spec (the pydantic models below, with links).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from grader.domain import Submission, SubmissionStatus
from grader.domain.exporters import (
    EXERCISM_TRUNCATED,
    LADDER,
    NotExportable,
    ResultFormat,
    Standing,
    export,
    variation_name,
)
from grader.domain.verdict import Verdict, VerdictStatus

from . import exporter_cases as cases
from .exporter_cases import CASES, LONG_OUTPUT

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("GRADER_REGENERATE_GOLDENS") == "1"
FORMATS = [f for f in ResultFormat if f is not ResultFormat.GRADER]


def render(case: str, fmt: ResultFormat) -> dict[str, Any]:
    try:
        return export(CASES[case](), fmt)
    except NotExportable as exc:
        return {"error": {"code": exc.code, "message": str(exc)}}


def as_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# The formats' rules -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ExercismTest(_Strict):
    """https://github.com/exercism/docs/blob/main/building/tooling/test-runners/interface.md"""

    name: str
    status: Literal["pass", "fail", "error"]
    message: str | None = None
    output: str = Field(default="", max_length=500)
    test_code: str = ""
    task_id: int = 0


class ExercismResult(_Strict):
    """Exercism results.json, version 3 (same page, "Output format")."""

    version: Literal[3]
    status: Literal["pass", "fail", "error"]
    message: str | None = Field(default=None, max_length=65535)
    tests: list[ExercismTest] | None = None


def check_exercism(document: dict[str, Any]) -> None:
    result = ExercismResult.model_validate(document)
    if result.status == "error":  # message required; tests optional
        assert result.message
    else:  # tests required; message null or omitted
        assert result.tests and result.message is None
        statuses = {t.status for t in result.tests}
        assert (statuses == {"pass"}) == (result.status == "pass")
    for test in document.get("tests", []):
        # Optional keys are omitted, never null: task_id and test_code are typed number/string.
        assert all(value is not None for value in test.values()), test
        if test["status"] != "pass":
            assert test["message"]


class GradescopeTest(_Strict):
    """https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format")."""

    name: str
    score: float | None = None
    max_score: float | None = None
    status: Literal["passed", "failed"]
    output: str | None = None


class GradescopeResult(_Strict):
    score: float
    output: str
    output_format: Literal["text", "html", "simple_format", "md", "ansi"]
    tests: list[GradescopeTest]
    extra_data: dict[str, Any]


def check_gradescope(document: dict[str, Any]) -> None:
    if "error" in document:  # no document: the API answers 409
        assert document["error"]["code"] == "not_graded"
        return
    result = GradescopeResult.model_validate(document)
    # The tests' scores sum to the top-level score; informational tests carry none.
    assert sum(t.score or 0 for t in result.tests) == pytest.approx(result.score)
    for test in result.tests:
        assert (test.score is None) == (test.max_score is None)


class PrairieLearnTest(_Strict):
    """https://prairielearn.readthedocs.io/en/latest/externalGrading/#grading-results"""

    name: str
    points: float
    max_points: float
    message: str
    output: str


class PrairieLearnResult(_Strict):
    gradable: bool
    score: float | None = Field(default=None, ge=0, le=1)
    message: str
    output: str
    format_errors: list[str] | None = None
    tests: list[PrairieLearnTest] | None = None


def check_prairielearn(document: dict[str, Any]) -> None:
    result = PrairieLearnResult.model_validate(document)
    assert len(as_text(document).encode()) < 1_000_000  # "limited to 1 MB"
    if result.gradable:
        assert result.score is not None and result.tests is not None
        assert result.format_errors is None
    else:
        assert result.score is None and result.tests is None


CHECKS = {
    ResultFormat.EXERCISM_V3: check_exercism,
    ResultFormat.GRADESCOPE: check_gradescope,
    ResultFormat.PRAIRIELEARN: check_prairielearn,
}

PAIRS = [(case, fmt) for case in CASES for fmt in FORMATS]
IDS = [f"{case}-{fmt.value}" for case, fmt in PAIRS]


@pytest.mark.parametrize(("case", "fmt"), PAIRS, ids=IDS)
def test_documents_match_their_golden_files(case: str, fmt: ResultFormat) -> None:
    """Each case renders, byte for byte, as its committed golden file."""
    path = GOLDEN / f"{case}.{fmt.value}.json"
    text = as_text(render(case, fmt))
    if REGENERATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(("case", "fmt"), PAIRS, ids=IDS)
def test_documents_follow_their_format(case: str, fmt: ResultFormat) -> None:
    """Each rendered document keeps its format's rules (types, presence, caps, sums)."""
    CHECKS[fmt](render(case, fmt))


def test_no_golden_file_is_left_over() -> None:
    """Every committed golden file belongs to a case and a format (none is stale)."""
    expected = {f"{case}.{fmt.value}.json" for case, fmt in PAIRS}
    assert {p.name for p in GOLDEN.glob("*.json")} == expected


def test_every_verdict_status_has_a_rung() -> None:
    """The ladder places every verdict status: a new status cannot be exported unplaced."""
    assert set(LADDER) == set(VerdictStatus)
    assert {s for s, rung in LADDER.items() if rung is Standing.OURS} == {
        VerdictStatus.SANDBOX_ERROR
    }


@pytest.mark.parametrize("status", [SubmissionStatus.QUEUED, SubmissionStatus.RUNNING])
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.value)
def test_an_unfinished_submission_has_no_document(
    status: SubmissionStatus, fmt: ResultFormat
) -> None:
    """Queued or running: ``not_finished``, naming the state and how to wait."""
    unfinished = cases.tests_passed().model_copy(update={"status": status, "verdict": None})
    with pytest.raises(NotExportable) as caught:
        export(unfinished, fmt)
    assert caught.value.code == "not_finished"
    assert str(caught.value) == (
        f"submission 'sub-golden' is {status.value}: it has no result in {fmt.value} yet; "
        "retry later, or add ?wait=<seconds>"
    )


def test_the_grader_format_is_the_public_record() -> None:
    """``grader`` is today's representation, unchanged, even before the result exists."""
    done = cases.tests_passed()
    queued = done.model_copy(update={"status": SubmissionStatus.QUEUED, "verdict": None})
    assert export(done, ResultFormat.GRADER) == done.public()
    assert export(queued, ResultFormat.GRADER) == queued.public()


def test_exercism_output_is_capped_at_500_with_its_notice() -> None:
    """Output over 500 characters keeps 500 in all, ending with Exercism's notice."""
    tests = render("tests_partly_failing", ResultFormat.EXERCISM_V3)["tests"]
    output = tests[1]["output"]
    assert len(LONG_OUTPUT) > 500 and len(output) == 500
    assert output == LONG_OUTPUT[: 500 - len(EXERCISM_TRUNCATED)] + EXERCISM_TRUNCATED


def test_exercism_message_is_capped_at_its_limit() -> None:
    """A whole error longer than 65535 characters is cut to the limit, saying so."""
    huge = Verdict(status=VerdictStatus.ERROR, reason="E" * 70_000)
    failed = cases.tests_passed().model_copy(update={"verdict": huge})
    message = export(failed, ResultFormat.EXERCISM_V3)["message"]
    assert len(message) == 65535
    assert message.endswith("\n[message truncated at 65535 characters]")


def test_exercism_carries_test_code_only_when_given() -> None:
    """Hidden test source appears only for the tests the caller passes it for."""
    document = export(
        cases.tests_passed(), ResultFormat.EXERCISM_V3, test_code={"test_create": "assert create()"}
    )
    assert [t.get("test_code") for t in document["tests"]] == ["assert create()", None]
    assert "test_code" not in json.dumps(export(cases.tests_passed(), ResultFormat.EXERCISM_V3))


def test_a_contradicted_pass_is_exported_as_a_failure() -> None:
    """Tests claimed passed whose points were withdrawn (exit status disagreed) never pass."""
    reason = "the test report contradicts the process exit status"
    original = cases.tests_passed()
    assert original.verdict is not None
    withdrawn = tuple(t.model_copy(update={"points": 0}) for t in original.verdict.tests)
    verdict = Verdict(status=VerdictStatus.FAILED, reason=reason, max_points=5, tests=withdrawn)
    submission = original.model_copy(update={"verdict": verdict})
    exercism = export(submission, ResultFormat.EXERCISM_V3)
    assert exercism["status"] == "fail"
    assert [(t["status"], t["message"]) for t in exercism["tests"]] == [("fail", reason)] * 2
    gradescope = export(submission, ResultFormat.GRADESCOPE)
    assert [t["status"] for t in gradescope["tests"]] == ["failed", "failed"]


def test_a_failed_submission_without_a_verdict_is_our_fault() -> None:
    """A ``failed`` record without a verdict is exported as ours, never as the learner's."""
    bare = Submission(
        id="s", key_id="k", challenge_id="a/b", status=SubmissionStatus.FAILED, error="boom"
    )
    document = export(bare, ResultFormat.PRAIRIELEARN)
    assert document["gradable"] is False and "format_errors" not in document
    assert "boom" not in json.dumps(document)  # internal errors stay internal


@pytest.mark.parametrize(
    ("variation", "name"),
    [("[even] (i=2)", "test_x [even] (i=2)"), ("(i=2)", "test_x (i=2)"), ("i=2", "test_x [i=2]")],
)
def test_variations_are_named_after_their_test(variation: str, name: str) -> None:
    """``test_x [variation]``, keeping pytest's own brackets and parentheses."""
    assert variation_name("test_x", variation) == name


def test_the_output_case_diff_reaches_every_format() -> None:
    """An output challenge's diff is part of the message a learner reads, in every format."""
    diff = "--- expected\n+++ actual\n@@ -1 +1 @@\n-3\n+2\n"
    exercism = export(cases.output_failed(), ResultFormat.EXERCISM_V3)
    gradescope = export(cases.output_failed(), ResultFormat.GRADESCOPE)
    prairielearn = export(cases.output_failed(), ResultFormat.PRAIRIELEARN)
    assert exercism["tests"][0]["message"].endswith(diff)
    assert gradescope["tests"][0]["output"].startswith("output does not match (exact)")
    assert diff in gradescope["tests"][0]["output"]
    assert prairielearn["tests"][0]["message"].endswith(diff)
