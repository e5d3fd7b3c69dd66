"""Validation by execution: a challenge's code runs, its expectation holds, its key is proven.

- The code meets the expectation in the challenge's environment, and in every environment the
  file records, against that environment's truth (which may be of another kind).
- Code options: exactly the keyed option produces the expected outcome.
- Text options of ``output``/``state`` challenges: the keyed option's text equals what was
  observed, and no other option's does; of ``outcome`` challenges, when they are pytest summary
  lines, likewise against pytest's summary.
- ``exception`` challenges with explanation options: the premise (the exception) is proven;
  the explanations themselves are for review.
- Every run (the code in each environment, each code option) is repeated ``runs`` times; a
  challenge whose observations differ between runs is flaky, and refused with what differed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from .challenge import Challenge, Expectation, Kind, Option, OutputExpectation
from .compare import compare, failing_exception, output_matches
from .grading import request_for
from .observation import (
    Limits,
    Observation,
    RunRequest,
    RunStatus,
    StateStatus,
    TestOutcome,
    format_summary,
    parse_summary,
    summary_lines,
)
from .observed import describe, failure_detail
from .outcomes import observed_summary
from .sandbox import Sandbox
from .text import json_equal, parse_literal

Runner = Callable[[str, RunRequest], list[Observation]]
DEFAULT_RUNS = 3
"""How many times ``validate`` runs each code: a flaky challenge rarely fails once in one."""


class Check(BaseModel):
    """One proven (or refuted) claim about a challenge."""

    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    detail: str
    environment: str | None = None
    observed: str = ""
    """For a failed check, what the run showed: a unified diff of the expected and the actual
    output, or the exception, syntax error, test outcomes, state values and output."""


class ChallengeReport(BaseModel):
    """Every check of one challenge."""

    model_config = ConfigDict(frozen=True)

    challenge: str
    kind: Kind
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def validate(
    challenge: Challenge, sandbox: Sandbox, limits: Limits, runs: int = DEFAULT_RUNS
) -> ChallengeReport:
    """Run everything the challenge claims ``runs`` times and record each claim as a check.

    A run whose observations differ between repetitions adds a failing check naming what
    differed; the other checks are made on the first observation.
    """
    flaky: list[Check] = []

    def run(environment: str, request: RunRequest) -> list[Observation]:
        observed = [sandbox.run(environment, request, limits) for _ in range(max(runs, 1))]
        difference = first_difference(observed)
        if difference is not None:
            what = _what_ran(challenge, request)
            flaky.append(
                Check(
                    name="the same outcome in every run",
                    ok=False,
                    detail=f"{what}: {difference}",
                    environment=environment,
                )
            )
        return observed

    checks: list[Check] = []
    if challenge.kind is Kind.CONCEPTUAL:
        checks.append(
            Check(
                name="key",
                ok=True,
                detail=f"answer {challenge.answer} is one of the options; "
                "conceptual keys are for review",
            )
        )
        return ChallengeReport(
            challenge=challenge.qualified_id, kind=challenge.kind, checks=tuple(checks)
        )
    environments = [
        challenge.environment,
        *[e for e in challenge.environments if e != challenge.environment],
    ]
    for environment in environments:
        expectation = challenge.expectation_for(environment)
        if expectation is None:
            continue
        primary = environment == challenge.environment
        observed = None
        if challenge.code is not None:
            every = run(environment, request_for(challenge, challenge.code, expectation))
            observed = every[0]
            verdicts = [compare(challenge.kind, expectation, obs) for obs in every]
            verdict = next((v for v in verdicts if not v.passed), verdicts[0])
            checks.append(
                Check(
                    name="code meets the expectation",
                    ok=verdict.passed,
                    detail=verdict.reason,
                    environment=environment,
                    observed=failure_detail(expectation, verdict),
                )
            )
        if primary and challenge.options:
            checks += _prove_key(challenge, expectation, environment, observed, run)
    return ChallengeReport(
        challenge=challenge.qualified_id, kind=challenge.kind, checks=(*checks, *flaky)
    )


def _what_ran(challenge: Challenge, request: RunRequest) -> str:
    codes = set(request.files.values())
    label = next((o.label for o in challenge.options if o.code in codes), None)
    return f"option {label}" if label else "the code"


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_COMPARED = "status exit_code signal exception syntax_error collection_errors pytest_summary state"


def outcome_of(obs: Observation) -> dict[str, Any]:
    """What a run showed that an expectation can compare: no timings, memory or stderr.

    Object addresses (``<coroutine object f at 0x7f...>``) differ from one process to the
    next and are masked; anything else that differs between runs is the snippet's own doing.
    """
    include = {*_COMPARED.split(), "warnings", "child_report"}
    fields = obs.model_dump(mode="json", include=include, exclude={"exception": {"traceback"}})
    fields["stdout"] = obs.stdout.text
    fields["tests"] = [
        {"nodeid": t.nodeid, "outcome": t.outcome.value, "when": t.when, "message": t.message}
        for t in obs.tests
    ]
    if obs.cases:  # each stdin case: what a case's verdict is decided on
        fields["cases"] = [
            {"status": c.status.value, "stdout": c.stdout.text, "exit_code": c.exit_code}
            for c in obs.cases
        ]
    masked: dict[str, Any] = _masked(fields)
    return masked


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _ADDRESS.sub("0x…", value)
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return value


def first_difference(observed: list[Observation]) -> str | None:
    """How the first run that differs from run 1 differs, field by field; None if none does."""
    first = outcome_of(observed[0])
    for number, obs in enumerate(observed[1:], start=2):
        other = outcome_of(obs)
        fields = [name for name in first if first[name] != other[name]]
        if fields:
            shown = ", ".join(
                f"{name} {_short(first[name])} vs {_short(other[name])}" for name in fields
            )
            return f"run 1 and run {number} of {len(observed)} differ in {shown}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _prove_key(
    challenge: Challenge,
    expectation: Expectation,
    environment: str,
    observed: Observation | None,
    run: Runner,
) -> list[Check]:
    code_options = [o for o in challenge.options if o.code is not None]
    text_options = [o for o in challenge.options if o.text is not None]
    checks: list[Check] = []
    if code_options:
        producing = []
        observed_key = ""
        for option in code_options:
            assert option.code is not None  # noqa: S101  filtered above
            every = run(environment, request_for(challenge, option.code, expectation))
            verdicts = [compare(challenge.kind, expectation, obs) for obs in every]
            failed = next((v for v in verdicts if not v.passed), None)
            if failed is None:
                producing.append(option.label)
            elif option.label == challenge.answer:
                detail = failure_detail(expectation, failed)
                observed_key = f"the key, {option.label}: {failed.reason}\n{detail}".rstrip()
        ok = producing == [challenge.answer]
        detail = (
            f"only {challenge.answer} produces the expected {challenge.kind}"
            if ok
            else f"options producing it: {', '.join(producing) or 'none'}; key: {challenge.answer}"
        )
        checks.append(
            Check(
                name="exactly the keyed option",
                ok=ok,
                detail=detail,
                environment=environment,
                observed="" if ok else observed_key,
            )
        )
    if text_options and observed is not None:
        checks.append(_prove_text_key(challenge, expectation, text_options, observed, environment))
    return checks


def _prove_text_key(
    challenge: Challenge,
    expectation: Expectation,
    options: list[Option],
    observed: Observation,
    environment: str,
) -> Check:
    matching = [o.label for o in options if _text_matches(challenge, expectation, o, observed)]
    summaries = challenge.kind is Kind.OUTCOME and _all_summaries(options)
    if challenge.kind not in (Kind.OUTPUT, Kind.STATE) and not summaries:
        return Check(
            name="key",
            ok=True,
            environment=environment,
            detail="options are explanations: the premise is proven, the key is for review",
        )
    ok = matching == [challenge.answer]
    detail = (
        f"{challenge.answer}'s text is what was observed, and no other option's"
        if ok
        else f"options equal to the observation: {', '.join(matching) or 'none'}; "
        f"key: {challenge.answer}"
    )
    if summaries:
        detail += f" (pytest reported {format_summary(observed_summary(observed))})"
    return Check(
        name="keyed text equals the observation",
        ok=ok,
        detail=detail,
        environment=environment,
        observed="" if ok else describe(observed),
    )


def _text_matches(
    challenge: Challenge, expectation: Expectation, option: Option, observed: Observation
) -> bool:
    text = option.text or ""
    if challenge.kind is Kind.OUTPUT and expectation.output is not None:
        mode = "literal" if expectation.output.match == "literal" else "normalized"
        return output_matches(OutputExpectation(match=mode, stdout=text), observed.stdout.text)
    if challenge.kind is Kind.STATE and expectation.state is not None:
        parsed_ok, parsed = parse_literal(text)
        names = list(expectation.state.values)
        value = observed.state.get(names[0]) if len(names) == 1 else None
        return parsed_ok and value is not None and json_equal(parsed, value.value)
    if challenge.kind is Kind.OUTCOME and _all_summaries([option]):
        return parse_summary(text) == observed_summary(observed)
    return False


def _all_summaries(options: list[Option]) -> bool:
    """Whether every text option is a pytest summary line (``1 passed, 1 warning``)."""
    return len(summary_lines([o.text or "" for o in options])) == len(options)


def summarize(obs: Observation) -> str:
    """A short outcome for tables: what happened, in a few words."""
    if obs.status is RunStatus.SYNTAX_ERROR and obs.syntax_error is not None:
        return f"{obs.syntax_error.type} line {obs.syntax_error.line}"
    if obs.status is not RunStatus.COMPLETED:
        return obs.status.value
    parts = []
    if obs.tests:
        passed = sum(t.outcome is TestOutcome.PASSED for t in obs.tests)
        others = [
            f"{count} {outcome.value}"
            for outcome in (TestOutcome.SKIPPED, TestOutcome.XFAILED, TestOutcome.XPASSED)
            if (count := sum(t.outcome is outcome for t in obs.tests))
        ]
        errors = [t for t in obs.tests if t.outcome is TestOutcome.ERROR]
        others += [f"{len(errors)} error at {errors[0].when}"] if errors else []
        parts.append(", ".join([f"{passed}/{len(obs.tests)} passed", *others]))
    if obs.cases:  # each stdin case: the first line it printed, or else its status
        shown = [c.stdout.text.strip().partition("\n")[0][:20] or c.status for c in obs.cases]
        parts.append(f"{len(obs.cases)} cases: {' | '.join(shown)}")
    for error in obs.collection_errors[:1]:
        exc_info = error.exception
        about = f"{exc_info.type}: {exc_info.message}" if exc_info else error.message[-60:]
        parts.append(f"collection error {about[:60]}")
    exc = failing_exception(obs)
    if exc is not None:
        message = (exc.message.splitlines() or [""])[0]
        message = message if len(message) <= 60 else message[:57] + "..."
        parts.append(f"{exc.type}: {message}")
    for name, value in obs.state.items():
        parts.append(f"{name}={value.value!r}" if value.status is StateStatus.OK else f"{name}?")
    if obs.warnings:
        names = sorted({w.category.rsplit(".", 1)[-1] for w in obs.warnings})
        parts.append(f"warned {', '.join(names)}")
    if not parts:
        first = obs.stdout.text.strip().splitlines()[:1]
        parts.append(f"ok, printed {first[0][:40]!r}" if first else "ok")
    return _ADDRESS.sub("0x…", "; ".join(parts))  # an address is no difference


class MatrixCell(BaseModel):
    """One challenge in one environment."""

    model_config = ConfigDict(frozen=True)

    environment: str
    outcome: str
    expected: bool | None  # None: the file records no expectation for this environment
    kind: Kind | None = None  # the kind of the truth recorded here (None: none recorded)


class MatrixRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    challenge: str
    cells: tuple[MatrixCell, ...]

    @property
    def differs(self) -> bool:
        return len({cell.outcome for cell in self.cells}) > 1

    @property
    def ok(self) -> bool:
        return all(cell.expected is not False for cell in self.cells)


def matrix_row(
    challenge: Challenge, environments: list[str], sandbox: Sandbox, limits: Limits
) -> MatrixRow | None:
    """The challenge's code run in every environment (None for challenges without code)."""
    if challenge.code is None:
        return None
    cells = []
    for environment in environments:
        recorded = environment == challenge.environment or environment in challenge.environments
        expectation = challenge.expectation_for(environment) if recorded else None
        obs = sandbox.run(
            environment,
            request_for(challenge, challenge.code, expectation or challenge.expectation),
            limits,
        )
        expected = None
        if expectation is not None:
            expected = compare(challenge.kind, expectation, obs).passed
        cells.append(
            MatrixCell(
                environment=environment,
                outcome=summarize(obs),
                expected=expected,
                kind=challenge.kind_in(environment) if expectation is not None else None,
            )
        )
    return MatrixRow(challenge=challenge.qualified_id, cells=tuple(cells))
