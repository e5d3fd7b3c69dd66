"""Challenges: what an instructor writes in ``challenges/<set>/<name>.yaml``.

A challenge has a kind that says what is compared:

- ``output``     the snippet's stdout (exact, whitespace-normalised, regex, or Python literal);
- ``exception``  the uncaught exception (type, message, optional line);
- ``syntax``     a compile error (SyntaxError family, optional line and message);
- ``state``      named variables after the run, compared as JSON;
- ``tests``      hidden pytest tests run against the learner's code, with points;
- ``outcome``    what pytest reports: per-test outcomes, its summary line, a collection error;
- ``io``         stdin cases, each with its expected stdout and points (``domain/io.py``);
- ``conceptual`` no code; a choice graded against the key.

Every kind that runs can also expect warnings (``Expectation.warnings``), and an environment's
entry may state a truth of another kind than the challenge's (``EnvironmentOverride``).
Any kind with options can also be answered by choice; the key is then proven by execution
(``grader challenges validate``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .files import FilesPolicy
from .hidden import TestsExpectation
from .io import IoExpectation
from .observation import RunMode, parse_summary, summary_lines

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class Kind(StrEnum):
    OUTPUT = "output"
    EXCEPTION = "exception"
    SYNTAX = "syntax"
    STATE = "state"
    TESTS = "tests"
    OUTCOME = "outcome"
    IO = "io"
    CONCEPTUAL = "conceptual"


class Difficulty(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"
    EXPERT = "expert"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Loc = tuple[str | int, ...]


class ProblemAt(ValueError):
    """A rule on several fields, reported at the field to change: ``locs`` (below the model
    that raised it) best first; the loader shows the first one, at the line of the first one
    the file has (a missing ``mode:`` is reported on the ``kind:`` line)."""

    def __init__(self, message: str, *locs: Loc) -> None:
        super().__init__(message)
        self.locs = locs


def compiled(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``pattern`` compiled, or a ``ValueError`` with ``re``'s own message, for the loader."""
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None


class TextMatch(_Model):
    """How a text (a message, stdout) is compared. Exactly one field is set."""

    equals: str | None = None
    contains: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TextMatch:
        if sum(v is not None for v in (self.equals, self.contains, self.regex)) != 1:
            raise ValueError("set exactly one of equals, contains, regex")
        return self

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compiled(value)
        return value

    def matches(self, text: str) -> bool:
        """``regex`` is ``re.search``: anchor it with ``^...$`` for a whole-text match."""
        if self.equals is not None:
            return text == self.equals
        if self.contains is not None:
            return self.contains in text
        return re.search(self.regex or "", text) is not None

    def describe(self) -> str:
        if self.equals is not None:
            return f"equal to {self.equals!r}"
        if self.contains is not None:
            return f"containing {self.contains!r}"
        return f"matching /{self.regex}/"


class OutputExpectation(_Model):
    """Compare stdout. ``literal`` parses both sides as Python literals (``{'a': 1}``)."""

    match: Literal["exact", "normalized", "regex", "literal"] = "exact"
    stdout: str

    @field_validator("stdout")
    @classmethod
    def _regex_compiles(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("match") == "regex":
            compiled(value, re.DOTALL)
        return value


class ExceptionExpectation(_Model):
    """The uncaught exception (for pytest mode: the first failing test's exception)."""

    type: str
    message: TextMatch | None = None
    line: int | None = Field(default=None, ge=1)


class SyntaxExpectation(_Model):
    """A compile error found before anything runs."""

    type: Literal["SyntaxError", "IndentationError", "TabError"] = "SyntaxError"
    message: TextMatch | None = None
    line: int | None = Field(default=None, ge=1)


class StateExpectation(_Model):
    """Named variables after the run, compared as JSON values."""

    values: dict[str, Any] = Field(min_length=1)


OutcomeName = Literal["passed", "failed", "skipped", "xfailed", "xpassed", "error"]


class TestOutcomeRule(_Model):
    """What pytest reports for one test (every case of it, when it is parametrized)."""

    __test__ = False

    outcome: OutcomeName
    message: TextMatch | None = None
    """The skip or xfail reason, or the failure or error message, as pytest shows it."""
    when: Literal["setup", "call", "teardown"] | None = None
    """The phase that decided the outcome: an ``error`` at ``setup`` or at ``teardown``."""


class OutcomeExpectation(_Model):
    """What pytest reports: per-test outcomes, its summary line, a collection error."""

    tests: dict[str, TestOutcomeRule] = Field(default_factory=dict)
    """By test name: ``test_x``, ``TestClass::test_y``, or one case, ``test_x[1]``."""
    summary: str | None = None
    """Pytest's summary line for the whole run, exactly: ``1 skipped, 1 warning``."""
    collection_error: ExceptionExpectation | None = None
    """The error that stopped collection (for an import error, the ``ImportError`` itself)."""

    @model_validator(mode="after")
    def _something_expected(self) -> OutcomeExpectation:
        if not self.tests and self.summary is None and self.collection_error is None:
            raise ValueError("set at least one of tests, summary, collection_error")
        if self.summary is not None:
            parse_summary(self.summary)
        return self


class WarningRule(_Model):
    """A warning the run shows (or, with ``absent: true``, must not show).

    Every field set must match: ``category`` is the class name (or the end of its qualified
    name), ``message`` a text match, ``line`` the line in the snippet's own files.
    """

    category: str | None = None
    message: TextMatch | None = None
    line: int | None = Field(default=None, ge=1)
    absent: bool = False


class Expectation(_Model):
    """What a correct run shows: exactly one kind's field, and any warnings."""

    output: OutputExpectation | None = None
    exception: ExceptionExpectation | None = None
    syntax: SyntaxExpectation | None = None
    state: StateExpectation | None = None
    tests: TestsExpectation | None = None
    outcome: OutcomeExpectation | None = None
    io: IoExpectation | None = None
    warnings: tuple[WarningRule, ...] = ()

    def kinds(self) -> list[Kind]:
        return [Kind(name) for name in Kind if name != "conceptual" and getattr(self, name)]

    @property
    def kind(self) -> Kind | None:
        """The one kind this expectation states (None unless exactly one field is set)."""
        kinds = self.kinds()
        return kinds[0] if len(kinds) == 1 else None


class Option(_Model):
    """One multiple-choice option: a text (a value, an explanation) or code."""

    label: Annotated[str, StringConstraints(pattern=r"^[A-Z]$")]
    text: str | None = None
    code: str | None = None

    @model_validator(mode="after")
    def _text_or_code(self) -> Option:
        if (self.text is None) == (self.code is None):
            raise ValueError("an option has exactly one of text or code")
        return self


class EnvironmentOverride(_Model):
    """What the challenge's code does in another environment: its truth there, of any kind."""

    expectation: Expectation | None = None
    note: str = ""


_FILTER = re.compile(
    r"(default|error|ignore|always|module|once)"
    r"(:[^:]*(:([A-Za-z_][\w.]*)?(:[^:]*(:\d*)?)?)?)?"
)


class Challenge(_Model):
    """One challenge file."""

    id: Slug
    set: Slug
    title: str = Field(min_length=1)
    kind: Kind
    difficulty: Difficulty = Difficulty.INTERMEDIATE
    time_limit: int | None = Field(default=None, ge=1, description="Seconds from opening")
    attempts: int | None = Field(default=None, ge=1)
    late_scores: bool | None = None  # a late answer scores (None: as its set says, else no)
    show_expected: bool = False  # a wrong answer's result states the expected value at once
    prompt: str = Field(min_length=1)
    code: str | None = None
    mode: RunMode = RunMode.SCRIPT
    options: tuple[Option, ...] = ()
    answer: str | None = None
    explanation: str = ""
    hint: str = ""
    environment: str = "fastapi-0.115-httpx-0.27"
    limits: dict[str, float] = Field(default_factory=dict)
    files: FilesPolicy | None = None
    """Set: a learner may send several files (``files``); their entry and allowed paths."""
    expectation: Expectation | None = None
    environments: dict[str, EnvironmentOverride] = Field(default_factory=dict)
    state: tuple[str, ...] = ()
    """Extra names to read back after a run (``state`` kinds read their own names)."""
    filterwarnings: tuple[str, ...] = ()
    """``-W`` options for every run, in order, later ones winning: ``[error]`` escalates every
    warning to an exception (``action:message:category:module:lineno``, as ``python -W``)."""

    @model_validator(mode="after")
    def _filters_well_formed(self) -> Challenge:
        for index, spec in enumerate(self.filterwarnings):
            if _FILTER.fullmatch(spec) is None:
                raise ProblemAt(
                    f"filterwarnings entry {spec!r} is not a -W option "
                    "(action:message:category:module:lineno, e.g. 'error::RuntimeWarning')",
                    ("filterwarnings", index),
                )
        return self

    @model_validator(mode="after")
    def _options_consistent(self) -> Challenge:
        labels = [o.label for o in self.options]
        if len(set(labels)) != len(labels):
            raise ProblemAt("option labels must be unique", ("options",))
        if self.answer is not None and self.answer not in labels:
            raise ProblemAt(
                f"answer {self.answer!r} is not one of the options {labels}", ("answer",)
            )
        if self.options and self.answer is None:
            raise ProblemAt("a challenge with options needs an answer", ("options",))
        return self

    @model_validator(mode="after")
    def _expectation_consistent(self) -> Challenge:
        if self.kind is Kind.CONCEPTUAL:
            if not self.options:
                raise ProblemAt("a conceptual challenge needs options", ("kind",))
            if self.expectation is not None:
                raise ProblemAt("a conceptual challenge has no expectation", ("expectation",))
            return self
        if self.expectation is None:
            raise ProblemAt(f"a {self.kind} challenge needs an expectation", ("kind",))
        if self.expectation.kinds() != [self.kind]:
            raise ProblemAt(f"the expectation must set exactly '{self.kind}'", ("expectation",))
        if self.code is None and not any(o.code for o in self.options):
            raise ProblemAt(f"a {self.kind} challenge needs code or code options", ("kind",))
        self._check_truth(("expectation",), self.expectation)
        texts = [o.text for o in self.options if o.text is not None]
        if self.kind is Kind.STATE and texts:
            wanted = self.expectation.state
            if wanted is not None and len(wanted.values) != 1:
                raise ProblemAt(
                    "a state challenge with text options expects exactly one value",
                    ("expectation", "state", "values"),
                )
        if self.kind is Kind.OUTCOME and 0 < len(summary_lines(texts)) < len(texts):
            raise ProblemAt(
                "text options of an outcome challenge are either all pytest summary lines "
                "('1 passed, 1 warning') or all explanations",
                ("options",),
            )
        for name, override in self.environments.items():
            if override.expectation is not None:
                self._check_truth(("environments", name, "expectation"), override.expectation)
        return self

    def _check_truth(self, loc: Loc, expectation: Expectation) -> None:
        """One kind per truth; an environment may state another, within what the mode runs."""
        where = "the expectation" if loc == ("expectation",) else ".".join(map(str, loc))
        kind = expectation.kind
        if kind is None:
            raise ProblemAt(f"{where} must set exactly one of {', '.join(_RUN_KINDS)}", loc)
        if (kind is Kind.TESTS) != (self.kind is Kind.TESTS):
            raise ProblemAt(
                f"{where}: only a tests challenge expects tests, in every environment", loc
            )
        if (kind is Kind.IO) != (self.kind is Kind.IO):
            raise ProblemAt(f"{where}: only an io challenge expects io cases, everywhere", loc)
        if kind is Kind.IO and self.mode is not RunMode.SCRIPT:
            raise ProblemAt(f"{where}: io cases run scripts; remove 'mode: pytest'", ("mode",))
        if kind in (Kind.TESTS, Kind.OUTCOME) and self.mode is not RunMode.PYTEST:
            # A script never reports pytest's outcomes: the challenge could never pass.
            given = "mode: script" if "mode" in self.model_fields_set else "no mode (script)"
            raise ProblemAt(
                f"{where}: {kind} expectations need mode: pytest, and the file has {given}; "
                "hint: add 'mode: pytest' (hidden tests and pytest outcomes only exist when "
                "pytest runs the code)",
                ("mode",),
                ("kind",),
            )
        if expectation.warnings and kind in (Kind.SYNTAX, Kind.TESTS, Kind.IO):
            raise ProblemAt(
                f"{where}: {kind} expectations cannot expect warnings", (*loc, "warnings")
            )

    @property
    def qualified_id(self) -> str:
        return f"{self.set}/{self.id}"

    def option(self, label: str) -> Option:
        return next(o for o in self.options if o.label == label)

    def expectation_for(self, environment: str) -> Expectation | None:
        """The expectation in ``environment`` (its override, or the challenge's own)."""
        override = self.environments.get(environment)
        if override is not None and override.expectation is not None:
            return override.expectation
        return self.expectation

    def kind_in(self, environment: str) -> Kind:
        """The kind of the truth in ``environment`` (an override may state another)."""
        expectation = self.expectation_for(environment)
        return (expectation.kind if expectation is not None else None) or self.kind

    def state_names(self, expectation: Expectation | None = None) -> tuple[str, ...]:
        wanted = expectation or self.expectation
        names = list(self.state)
        if wanted is not None and wanted.state is not None:
            names += [n for n in wanted.state.values if n not in names]
        return tuple(names)


_RUN_KINDS = [kind.value for kind in Kind if kind is not Kind.CONCEPTUAL]
