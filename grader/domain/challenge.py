"""Challenges: what an instructor writes in ``challenges/<set>/<name>.yaml``.

A challenge has a kind that says what is compared:

- ``output``     the snippet's stdout (exact, whitespace-normalised, regex, or Python literal);
- ``exception``  the uncaught exception (type, message, optional line);
- ``syntax``     a compile error (SyntaxError family, optional line and message);
- ``state``      named variables after the run, compared as JSON;
- ``tests``      hidden pytest tests run against the learner's code, with points;
- ``conceptual`` no code; a choice graded against the key.

Any kind with options can also be answered by choice; the key is then proven by execution
(``grader challenges validate``).
"""

from __future__ import annotations

import ast
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .observation import RunMode

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class Kind(StrEnum):
    OUTPUT = "output"
    EXCEPTION = "exception"
    SYNTAX = "syntax"
    STATE = "state"
    TESTS = "tests"
    CONCEPTUAL = "conceptual"


class Difficulty(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"
    EXPERT = "expert"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class OutputExpectation(_Model):
    """Compare stdout. ``literal`` parses both sides as Python literals (``{'a': 1}``)."""

    match: Literal["exact", "normalized", "regex", "literal"] = "exact"
    stdout: str


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


class TestsExpectation(_Model):
    """Hidden pytest tests run against the learner's code (written to ``solution_file``)."""

    __test__ = False

    file: str = Field(default="test_hidden.py", pattern=r"^test_[a-z0-9_]+\.py$")
    code: str = Field(min_length=1)
    solution_file: str = Field(default="solution.py", pattern=r"^[a-z_][a-z0-9_]*\.py$")
    points: dict[str, float] = Field(default_factory=dict)
    """Points per test name (``test_x`` or ``TestClass::test_y``); others are worth 1."""

    @model_validator(mode="after")
    def _points_name_tests(self) -> TestsExpectation:
        try:
            names = hidden_test_names(self.code)
        except SyntaxError as exc:
            raise ValueError(
                f"hidden tests do not compile: {exc.msg} (line {exc.lineno})"
            ) from None
        if not names:
            raise ValueError("the hidden tests define no test functions")
        unknown = sorted(set(self.points) - set(names))
        if unknown:
            raise ValueError(f"points name unknown tests {unknown}; tests are {names}")
        return self


def hidden_test_names(code: str) -> list[str]:
    """Test names in a hidden test file, in order: ``test_x`` and ``TestClass::test_y``.

    Parsed, never run: the expected tests are known outside the container.
    """
    names: list[str] = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names += [
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("test")
            ]
    return names


class Expectation(_Model):
    """What a correct run shows. Exactly the field of the challenge's kind is set."""

    output: OutputExpectation | None = None
    exception: ExceptionExpectation | None = None
    syntax: SyntaxExpectation | None = None
    state: StateExpectation | None = None
    tests: TestsExpectation | None = None

    def kinds(self) -> list[Kind]:
        return [Kind(name) for name in Kind if name != "conceptual" and getattr(self, name)]


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
    """What the challenge's code does in another environment (for the matrix)."""

    expectation: Expectation | None = None
    note: str = ""


class Challenge(_Model):
    """One challenge file."""

    id: Slug
    set: Slug
    title: str = Field(min_length=1)
    kind: Kind
    difficulty: Difficulty = Difficulty.INTERMEDIATE
    time_limit: int | None = Field(default=None, ge=1, description="Seconds, for display")
    attempts: int | None = Field(default=None, ge=1)
    prompt: str = Field(min_length=1)
    code: str | None = None
    mode: RunMode = RunMode.SCRIPT
    options: tuple[Option, ...] = ()
    answer: str | None = None
    explanation: str = ""
    hint: str = ""
    environment: str = "fastapi-0.115-httpx-0.27"
    limits: dict[str, float] = Field(default_factory=dict)
    expectation: Expectation | None = None
    environments: dict[str, EnvironmentOverride] = Field(default_factory=dict)
    state: tuple[str, ...] = ()
    """Extra names to read back after a run (``state`` kinds read their own names)."""

    @model_validator(mode="after")
    def _options_consistent(self) -> Challenge:
        labels = [o.label for o in self.options]
        if len(set(labels)) != len(labels):
            raise ValueError("option labels must be unique")
        if self.answer is not None and self.answer not in labels:
            raise ValueError(f"answer {self.answer!r} is not one of the options {labels}")
        if self.options and self.answer is None:
            raise ValueError("a challenge with options needs an answer")
        return self

    @model_validator(mode="after")
    def _expectation_consistent(self) -> Challenge:
        if self.kind is Kind.CONCEPTUAL:
            if not self.options:
                raise ValueError("a conceptual challenge needs options")
            if self.expectation is not None:
                raise ValueError("a conceptual challenge has no expectation")
            return self
        if self.expectation is None:
            raise ValueError(f"a {self.kind} challenge needs an expectation")
        if self.expectation.kinds() != [self.kind]:
            raise ValueError(f"the expectation must set exactly '{self.kind}'")
        if self.kind is Kind.TESTS and self.mode is not RunMode.PYTEST:
            raise ValueError("a tests challenge runs in pytest mode")
        if self.code is None and not any(o.code for o in self.options):
            raise ValueError(f"a {self.kind} challenge needs code or code options")
        if self.kind is Kind.STATE and any(o.text is not None for o in self.options):
            wanted = self.expectation.state
            if wanted is not None and len(wanted.values) != 1:
                raise ValueError("a state challenge with text options expects exactly one value")
        for name, override in self.environments.items():
            if override.expectation is not None and override.expectation.kinds() != [self.kind]:
                raise ValueError(f"environments.{name}.expectation must set '{self.kind}'")
        return self

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

    def state_names(self, expectation: Expectation | None = None) -> tuple[str, ...]:
        wanted = expectation or self.expectation
        names = list(self.state)
        if wanted is not None and wanted.state is not None:
            names += [n for n in wanted.state.values if n not in names]
        return tuple(names)
