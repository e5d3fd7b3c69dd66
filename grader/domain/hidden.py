"""Hidden test files: their names, and the tests pytest will collect from them.

Parsed, never run: the expected tests are known outside the container, so a learner's code
that stops tests from running or reporting loses their points instead of hiding them. The
rules are pytest's defaults: test files are ``test_*.py`` or ``*_test.py``; tests are the
``test*`` functions of a test module, the ``test*`` methods of its ``Test*`` classes (without
an ``__init__``), and of its ``unittest.TestCase`` classes of any name (derived directly or
through a base class of the hidden files), inherited methods included.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

TEST_FILE = re.compile(r"^(test_[A-Za-z0-9_]*|[A-Za-z0-9_]*_test)\.py$")
"""pytest's default ``python_files``: ``test_*.py`` and ``*_test.py``."""
PY_FILE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")
DATA_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
MAX_NAME = 100
RESERVED = frozenset({"__init__.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"})
_UNITTEST_BASES = frozenset({"TestCase", "IsolatedAsyncioTestCase"})


def is_test_file(name: str) -> bool:
    return TEST_FILE.fullmatch(name) is not None


def file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a hidden file, or None.

    Python files sit next to the solution (so that ``from lasagna import x`` works); data
    files may be in folders (``data/cases.json``). pytest's own configuration files and a
    package marker would change how every test is collected, so they are refused.
    """
    if len(name) > MAX_NAME:
        return f"{name!r}: a file name has at most {MAX_NAME} characters"
    if name in RESERVED:
        return f"{name!r} would change how pytest collects the tests"
    parts = name.split("/")
    if name.endswith(".py"):
        if len(parts) > 1 or PY_FILE.fullmatch(name) is None:
            return f"{name!r}: a Python file is a module name + .py, beside the solution"
        return None
    if not all(DATA_PART.fullmatch(part) for part in parts) or len(parts) > 4:
        return (
            f"{name!r}: a data file is a relative path of at most 4 parts, each of letters, "
            "digits, '_', '-' and '.', not starting with '.' or '-'"
        )
    return None


@dataclass(frozen=True)
class ExpectedTest:
    """One test pytest will collect: ``file`` and ``name`` (``test_x``, ``Class::test_y``)."""

    __test__ = False

    file: str
    name: str

    @property
    def nodeid(self) -> str:
        return f"{self.file}::{self.name}"


def _hidden_name(name: str) -> str:
    problem = file_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


class TestsExpectation(BaseModel):
    """Hidden pytest tests run against the learner's code (written to ``solution_file``).

    One file (``code``, named ``file``) or several (``files``: test files named as pytest
    finds them, ``test_*.py`` or ``*_test.py``, plus helpers, a ``conftest.py``, data files).
    Points are keyed by test name (``test_x``, ``Class::test_y``) or, to tell apart two
    files' tests of one name, by ``file.py::name``.
    """

    __test__ = False
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(default="test_hidden.py", pattern=r"^(test_[a-z0-9_]+|[a-z0-9_]+_test)\.py$")
    code: str | None = Field(default=None, min_length=1)
    files: dict[Annotated[str, AfterValidator(_hidden_name)], str] = Field(default_factory=dict)
    solution_file: str = Field(default="solution.py", pattern=r"^[a-z_][a-z0-9_]*\.py$")
    points: dict[str, float] = Field(default_factory=dict)
    """Points per test (``test_x``, ``TestClass::test_y`` or ``file.py::test_x``); others 1."""

    @field_validator("code")
    @classmethod
    def _code_compiles(cls, code: str | None, info: ValidationInfo) -> str | None:
        if code is not None:
            parse_modules({info.data.get("file", "test_hidden.py"): code})
        return code

    @field_validator("files")
    @classmethod
    def _files_compile(cls, files: dict[str, str]) -> dict[str, str]:
        parse_modules(files)
        if files and not any(is_test_file(name) for name in files):
            raise ValueError("no test file: name one test_<name>.py or <name>_test.py")
        return files

    @field_validator("solution_file")
    @classmethod
    def _solution_apart(cls, name: str, info: ValidationInfo) -> str:
        if name in info.data.get("files", {}) or name == info.data.get("file"):
            raise ValueError(f"{name} is also a hidden file")
        if is_test_file(name) or name == "conftest.py":
            raise ValueError(
                f"{name} would be collected as tests; name it as the tests import it (lasagna.py)"
            )
        return name

    @field_validator("points")
    @classmethod
    def _points_name_tests(cls, points: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        hidden = info.data.get("files") or (
            {info.data["file"]: info.data["code"]} if info.data.get("code") else {}
        )
        if hidden and "solution_file" in info.data:
            resolve_points(points, expected_tests(hidden), _several(hidden))
        return points

    @model_validator(mode="after")
    def _tests_given(self) -> TestsExpectation:
        if (self.code is None) == (not self.files):
            raise ValueError("give the hidden tests as code (one file) or as files, not both")
        if self.files and "file" in self.model_fields_set:
            raise ValueError("file names the one file of code; files are named by their keys")
        names = {*self.hidden_files(), self.solution_file}
        for name in names:
            parts = name.split("/")
            folders = {"/".join(parts[:end]) for end in range(1, len(parts))}
            if folders & names:
                raise ValueError(
                    f"files: {name!r} is inside {sorted(folders & names)[0]!r}, a file"
                )
        if not self.expected():
            raise ValueError("the hidden tests define no test functions")
        return self

    def hidden_files(self) -> dict[str, str]:
        """Every hidden file by name (one file of ``code``, or ``files``)."""
        return dict(self.files) if self.files else {self.file: self.code or ""}

    def test_files(self) -> list[str]:
        return [name for name in self.hidden_files() if is_test_file(name)]

    def expected(self) -> list[ExpectedTest]:
        """The tests pytest will collect from the hidden files (parsed, never run)."""
        return expected_tests(self.hidden_files())

    def display_name(self, test: ExpectedTest) -> str:
        """``test_x`` with one test file; ``file.py::test_x`` with several."""
        return test.nodeid if _several(self.hidden_files()) else test.name

    def points_by_test(self, tests: list[ExpectedTest]) -> dict[str, float]:
        """Each test's points by node id."""
        return resolve_points(self.points, tests, _several(self.hidden_files()))


def _several(files: dict[str, str]) -> bool:
    return sum(is_test_file(name) for name in files) > 1


def resolve_points(
    points: dict[str, float], tests: list[ExpectedTest], several: bool
) -> dict[str, float]:
    """Each test's points by node id; ``ValueError`` for a key naming no test or several.

    A key is a test's node id or its end after a ``::``: ``file.py::Class::test_x``,
    ``Class::test_x`` or ``test_x``, as long as it names exactly one test.
    """
    resolved = {test.nodeid: 1.0 for test in tests}
    unknown = []
    for key, value in points.items():
        named = [t for t in tests if t.nodeid == key or t.nodeid.endswith(f"::{key}")]
        if len(named) > 1:
            where = ", ".join(t.nodeid for t in named)
            raise ValueError(f"{key!r} names several tests ({where}); name one of them")
        if named:
            resolved[named[0].nodeid] = value
        else:
            unknown.append(key)
    if unknown:
        names = [t.nodeid if several else t.name for t in tests]
        raise ValueError(f"points name unknown tests {sorted(unknown)}; tests are {names}")
    return resolved


def hidden_test_names(code: str) -> list[str]:
    """Test names in one hidden test file, in order: ``test_x`` and ``TestClass::test_y``.

    Parsed, never run: the expected tests are known outside the container.
    """
    return [test.name for test in expected_tests({"test_hidden.py": code})]


def parse_modules(files: dict[str, str]) -> dict[str, ast.Module]:
    """The hidden Python files as syntax trees, by module name.

    ``ValueError`` naming the file and line when one does not compile.
    """
    modules = {}
    for name, code in files.items():
        if not name.endswith(".py"):
            continue
        try:
            modules[name.removesuffix(".py")] = ast.parse(code, filename=name)
        except (SyntaxError, ValueError) as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            message = getattr(exc, "msg", None) or str(exc)
            raise ValueError(f"hidden file {name} does not compile: {message}{where}") from None
    return modules


def expected_tests(files: dict[str, str]) -> list[ExpectedTest]:
    """Every test pytest will collect from the hidden test files, in file order."""
    modules = parse_modules(files)
    finder = _Finder(modules)
    found: list[ExpectedTest] = []
    for name in files:
        if is_test_file(name):
            found += [ExpectedTest(name, test) for test in finder.tests(name.removesuffix(".py"))]
    return found


_Class = tuple[str, ast.ClassDef]  # (module, class)


class _Finder:
    """Resolves names across the hidden modules, as far as the source says statically."""

    def __init__(self, modules: dict[str, ast.Module]) -> None:
        self._modules = modules

    def tests(self, module: str) -> list[str]:
        names: list[str] = []
        for binding, target in self._bindings(module).items():
            if target == "f":
                if binding.startswith("test"):
                    names.append(binding)
                continue
            if isinstance(target, str):  # unittest's own TestCase: no tests
                continue
            names += [f"{binding}::{method}" for method in self._class_tests(binding, target)]
        return list(dict.fromkeys(names))

    def _bindings(self, module: str) -> dict[str, str | _Class]:
        """Top-level names of ``module`` bound to a function ("f"), a class, or unittest's
        ``TestCase`` ("unittest"), in the order pytest meets them."""
        bound: dict[str, str | _Class] = {}
        for node in self._modules[module].body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                bound[node.name] = "f"
            elif isinstance(node, ast.ClassDef):
                bound[node.name] = (module, node)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    target = self._imported(node.module, alias.name)
                    if target is not None:
                        bound[alias.asname or alias.name] = target
        return bound

    def _imported(self, module: str, name: str, depth: int = 0) -> str | _Class | None:
        if module == "unittest" and name in _UNITTEST_BASES:
            return "unittest"
        if module not in self._modules or depth > 10:
            return None
        for node in self._modules[module].body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                return "f"
            if isinstance(node, ast.ClassDef) and node.name == name:
                return (module, node)
        for node in self._modules[module].body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return self._imported(node.module, alias.name, depth + 1)
        return None

    def _base(self, module: str, expr: ast.expr) -> str | _Class | None:
        """What a base-class expression refers to: a hidden class, or unittest's TestCase."""
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            imported = self._module_alias(module, expr.value.id)
            return self._imported(imported, expr.attr) if imported else None
        if isinstance(expr, ast.Name):
            for node in self._modules[module].body:
                if isinstance(node, ast.ClassDef) and node.name == expr.id:
                    return (module, node)
            for node in self._modules[module].body:
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    for alias in node.names:
                        if (alias.asname or alias.name) == expr.id:
                            return self._imported(node.module, alias.name)
        return None

    def _module_alias(self, module: str, name: str) -> str | None:
        for node in self._modules[module].body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return alias.name
        return None

    def _lineage(self, klass: _Class) -> tuple[list[_Class], bool]:
        """The class and its hidden ancestors (nearest first), and whether it is a TestCase."""
        lineage: list[_Class] = []
        unittest = False
        pending = [klass]
        while pending and len(lineage) < 50:
            current = pending.pop(0)
            if any(current[1] is seen[1] for seen in lineage):
                continue
            lineage.append(current)
            for expr in current[1].bases:
                base = self._base(current[0], expr)
                if base == "unittest":
                    unittest = True
                elif isinstance(base, tuple):
                    pending.append(base)
        return lineage, unittest

    def _class_tests(self, binding: str, klass: _Class) -> list[str]:
        lineage, unittest = self._lineage(klass)
        if _sets_test_false(klass[1]):
            return []
        if not unittest and (not binding.startswith("Test") or _defines(klass[1], "__init__")):
            return []
        seen: set[str] = set()
        per_class: list[list[str]] = []
        for _, node in lineage:  # nearest first: an override hides its base's method
            own = [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("test")
                and item.name not in seen
            ]
            seen.update(own)
            per_class.append(own)
        if unittest:  # unittest's loader sorts a TestCase's methods by name
            return sorted(seen)
        # pytest lists a class's tests from its farthest base to itself
        return [name for own in reversed(per_class) for name in own]


def _defines(node: ast.ClassDef, name: str) -> bool:
    return any(
        isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == name
        for item in node.body
    )


def _sets_test_false(node: ast.ClassDef) -> bool:
    for item in node.body:
        if (
            isinstance(item, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__test__" for t in item.targets)
            and isinstance(item.value, ast.Constant)
            and item.value.value is False
        ):
            return True
    return False
