"""Loading challenge files: YAML in, ``Challenge`` out, errors that name file, line and field.

Every problem of every file is reported in one pass (``read_challenges``): a file's field
errors all at once, each at the line of its own key, and every broken file of a folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ChallengeError
from .challenge import Challenge, Loc, ProblemAt
from .sets import SET_FILE, ChallengeSet

SUFFIXES = (".yaml", ".yml")

Lines = dict[Loc, int]


@dataclass(frozen=True)
class LoadProblem:
    """One thing wrong with a challenge file, where an instructor can find it."""

    path: Path
    line: int
    message: str
    field: str | None = None

    def __str__(self) -> str:
        where = f"field '{self.field}': " if self.field is not None else ""
        return f"{self.path}:{self.line}: {where}{self.message}"


@dataclass(frozen=True)
class LoadResult:
    """What loaded, and what did not (every problem, sorted by file and line)."""

    challenges: list[Challenge] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        """A ``ChallengeError`` naming every problem, one per line, if there is any."""
        if self.problems:
            raise ChallengeError("\n".join(str(p) for p in self.problems))


def _lines(node: yaml.Node, path: Loc, out: Lines) -> None:
    """Record the 1-based line of every key and item in the YAML node tree."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            out[child] = key.start_mark.line + 1
            _lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out)


def _line_of(lines: Lines, loc: Loc) -> int:
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1


def _field(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


@dataclass
class _File:
    """One file being loaded: its path, its YAML lines, what it said, what is wrong."""

    path: Path
    lines: Lines = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)

    def problem(self, message: str, loc: Loc | None = None, *fallbacks: Loc) -> None:
        """A problem at ``loc``'s line (or the first fallback the file has, else line 1)."""
        present = [c for c in (loc, *fallbacks) if c is not None and c in self.lines]
        line = self.lines[present[0]] if present else _line_of(self.lines, loc or ())
        shown = None if loc is None else _field(loc)
        self.problems.append(LoadProblem(self.path, line, message, shown))

    def origin(self, name: str) -> str:
        """Where the id or the set came from, for messages about it."""
        if name in self.data:
            return f"from its '{name}:' field, line {self.lines.get((name,), 1)}"
        if name == "id":
            return f"from the file name {self.path.name!r}"
        return f"from the folder name {self.path.parent.name!r}"

    def origin_hint(self, name: str) -> str:
        if name in self.data:
            return f"the {name} comes {self.origin(name)}"
        if name == "id":
            return f"the id comes {self.origin(name)}: rename the file, or set 'id:'"
        return f"the set comes {self.origin(name)}: rename the folder"


def _parse(file: _File, text: str | None = None) -> bool:
    """Read (unless given ``text``) and parse the YAML into ``file``; False (with the problem
    recorded) if it cannot. JSON is YAML too."""
    if text is None:
        try:
            text = file.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            file.problems.append(LoadProblem(file.path, 1, f"cannot read: {exc}"))
            return False
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        file.problems.append(LoadProblem(file.path, line, f"invalid YAML: {problem}"))
        return False
    if not isinstance(data, dict) or node is None:
        file.problems.append(LoadProblem(file.path, 1, "a challenge file is a mapping of fields"))
        return False
    _lines(node, (), file.lines)
    file.data = data
    return True


def _validation_problems(file: _File, exc: ValidationError) -> None:
    seen: set[tuple[Loc, str]] = set()
    for error in exc.errors():
        loc: Loc = tuple(
            p
            for p in error["loc"]
            if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))
        )
        cause = (error.get("ctx") or {}).get("error")
        locs = [(*loc, *more) for more in cause.locs] if isinstance(cause, ProblemAt) else [loc]
        message = error["msg"]
        if locs[0] and locs[0][0] in ("id", "set") and len(locs[0]) == 1:
            message += f"; {file.origin_hint(str(locs[0][0]))}"
        if (locs[0], message) not in seen:
            seen.add((locs[0], message))
            file.problem(message, *locs)


def _environment_problems(file: _File, known: set[str]) -> None:
    """Unknown environment names, each at its own key (checked on what the file says)."""
    named: list[tuple[Loc, object]] = []
    if "environment" in file.data:
        named.append((("environment",), file.data["environment"]))
    overrides = file.data.get("environments")
    if isinstance(overrides, dict):
        named += [(("environments", str(name)), name) for name in overrides]
    for loc, name in named:
        if isinstance(name, str) and name not in known:
            file.problem(f"unknown environment {name!r}; known: {', '.join(sorted(known))}", loc)


def _check(
    path: Path, known: set[str] | None, text: str | None = None
) -> tuple[Challenge | None, _File]:
    file = _File(path)
    if not _parse(file, text):
        return None, file
    folder_set = path.parent.name
    data = {"set": folder_set, "id": path.stem, **file.data}
    challenge = None
    try:
        challenge = Challenge.model_validate(data)
    except ValidationError as exc:
        _validation_problems(file, exc)
    given_set = file.data.get("set")
    if isinstance(given_set, str) and given_set != folder_set:
        file.problem(f"{given_set!r} differs from the folder {folder_set!r}", ("set",))
    if known is not None:
        _environment_problems(file, known)
    file.problems.sort(key=lambda p: p.line)
    return (challenge if not file.problems else None), file


def load_challenge(path: Path, known_environments: Iterable[str] | None = None) -> Challenge:
    """Parse and check one file; ``ChallengeError`` names every problem, one per line."""
    known = set(known_environments) if known_environments is not None else None
    challenge, file = _check(path, known)
    LoadResult(problems=file.problems).raise_for_problems()
    assert challenge is not None  # noqa: S101  no problems means it loaded
    return challenge


def parse_challenge(
    text: str, path: Path, known_environments: Iterable[str] | None = None
) -> tuple[Challenge | None, list[LoadProblem]]:
    """A challenge sent as text (an upload), checked as if it were the file at ``path``: its
    folder and stem are the default set and id, and problems name it. None if any problem."""
    known = set(known_environments) if known_environments is not None else None
    challenge, file = _check(path, known, text)
    return challenge, file.problems


def challenge_files(paths: Iterable[Path]) -> list[Path]:
    """Every challenge file under the given files and folders, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.suffix in SUFFIXES and p.name != SET_FILE
            )
        elif path.suffix in SUFFIXES and path.is_file():
            found.append(path)
        else:
            raise ChallengeError(f"{path}: not a challenge file or folder")
    return found


def read_challenges(
    paths: Iterable[Path], known_environments: Iterable[str] | None = None
) -> LoadResult:
    """Load every file and collect every problem of every file; a duplicate id is one too.

    A path that is neither a challenge file nor a folder raises ``ChallengeError``.
    """
    known = set(known_environments) if known_environments is not None else None
    seen: dict[str, _File] = {}
    result = LoadResult()
    for path in challenge_files(paths):
        challenge, file = _check(path, known)
        if challenge is not None and challenge.qualified_id in seen:
            first = seen[challenge.qualified_id]
            file.problem(
                f"duplicate id {challenge.qualified_id!r} ({file.origin('id')}), also in "
                f"{first.path} ({first.origin('id')}): rename one file, or set 'id:'",
                ("id",),
            )
            challenge = None
        if challenge is not None:
            seen[challenge.qualified_id] = file
            result.challenges.append(challenge)
        result.problems.extend(file.problems)
    return result


def load_challenges(
    paths: Iterable[Path], known_environments: Iterable[str] | None = None
) -> list[Challenge]:
    """Load every file, or raise one ``ChallengeError`` naming every problem of every file."""
    result = read_challenges(paths, known_environments)
    result.raise_for_problems()
    return result.challenges


def load_sets(root: Path) -> dict[str, ChallengeSet]:
    """The declarations of every set folder under ``root`` that has a ``_set.yaml``;
    ``ChallengeError`` names the file and the field of a wrong one."""
    sets: dict[str, ChallengeSet] = {}
    for path in sorted(root.glob(f"*/{SET_FILE}")):
        file = _File(path)
        if not _parse(file):
            LoadResult(problems=file.problems).raise_for_problems()
        try:
            sets[path.parent.name] = ChallengeSet.model_validate(
                {"name": path.parent.name, **file.data}
            )
        except ValidationError as exc:
            _validation_problems(file, exc)
            LoadResult(problems=file.problems).raise_for_problems()
    return sets
