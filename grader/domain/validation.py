"""Validation by execution: a challenge's code runs, its expectation holds, its key is proven.

- The code meets the expectation in the challenge's environment (and in every environment
  the file records an expectation for).
- Code options: exactly the keyed option produces the expected outcome.
- Text options of ``output``/``state`` challenges: the keyed option's text equals what was
  observed, and no other option's does.
- ``exception`` challenges with explanation options: the premise (the exception) is proven;
  the explanations themselves are for review.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from .challenge import Challenge, Expectation, Kind, Option, OutputExpectation
from .compare import compare, failing_exception, json_equal, output_matches, parse_literal
from .grading import request_for
from .observation import Limits, Observation, RunRequest, RunStatus, StateStatus, TestOutcome
from .sandbox import Sandbox

Runner = Callable[[str, RunRequest], Observation]


class Check(BaseModel):
    """One proven (or refuted) claim about a challenge."""

    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    detail: str
    environment: str | None = None


class ChallengeReport(BaseModel):
    """Every check of one challenge."""

    model_config = ConfigDict(frozen=True)

    challenge: str
    kind: Kind
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def validate(challenge: Challenge, sandbox: Sandbox, limits: Limits) -> ChallengeReport:
    """Run everything the challenge claims and record each claim as a check."""

    def run(environment: str, request: RunRequest) -> Observation:
        return sandbox.run(environment, request, limits)

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
            observed = run(environment, request_for(challenge, challenge.code, expectation))
            verdict = compare(challenge.kind, expectation, observed)
            checks.append(
                Check(
                    name="code meets the expectation",
                    ok=verdict.passed,
                    detail=verdict.reason,
                    environment=environment,
                )
            )
        if primary and challenge.options:
            checks += _prove_key(challenge, expectation, environment, observed, run)
    return ChallengeReport(
        challenge=challenge.qualified_id, kind=challenge.kind, checks=tuple(checks)
    )


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
        for option in code_options:
            assert option.code is not None  # noqa: S101  filtered above
            obs = run(environment, request_for(challenge, option.code, expectation))
            if compare(challenge.kind, expectation, obs).passed:
                producing.append(option.label)
        ok = producing == [challenge.answer]
        detail = (
            f"only {challenge.answer} produces the expected {challenge.kind}"
            if ok
            else f"options producing it: {', '.join(producing) or 'none'}; key: {challenge.answer}"
        )
        checks.append(
            Check(name="exactly the keyed option", ok=ok, detail=detail, environment=environment)
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
    if challenge.kind not in (Kind.OUTPUT, Kind.STATE):
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
    return Check(
        name="keyed text equals the observation", ok=ok, detail=detail, environment=environment
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
    return False


def summarize(obs: Observation) -> str:
    """A short outcome for tables: what happened, in a few words."""
    if obs.status is RunStatus.SYNTAX_ERROR and obs.syntax_error is not None:
        return f"{obs.syntax_error.type} line {obs.syntax_error.line}"
    if obs.status is not RunStatus.COMPLETED:
        return obs.status.value
    parts = []
    if obs.tests:
        passed = sum(t.outcome is TestOutcome.PASSED for t in obs.tests)
        parts.append(f"{passed}/{len(obs.tests)} passed")
    exc = failing_exception(obs)
    if exc is not None:
        message = exc.message if len(exc.message) <= 60 else exc.message[:57] + "..."
        parts.append(f"{exc.type}: {message}")
    for name, value in obs.state.items():
        parts.append(f"{name}={value.value!r}" if value.status is StateStatus.OK else f"{name}?")
    if not parts:
        first = obs.stdout.text.strip().splitlines()[:1]
        parts.append(f"ok, printed {first[0][:40]!r}" if first else "ok")
    return "; ".join(parts)


class MatrixCell(BaseModel):
    """One challenge in one environment."""

    model_config = ConfigDict(frozen=True)

    environment: str
    outcome: str
    expected: bool | None  # None: the file records no expectation for this environment


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
        cells.append(MatrixCell(environment=environment, outcome=summarize(obs), expected=expected))
    return MatrixRow(challenge=challenge.qualified_id, cells=tuple(cells))
