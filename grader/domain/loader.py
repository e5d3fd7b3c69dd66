"""Loading challenge files: YAML in, ``Challenge`` out, errors that name file, line and field."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ChallengeError
from .challenge import Challenge

SUFFIXES = (".yaml", ".yml")


def _lines(
    node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]
) -> None:
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


def _line_of(lines: dict[tuple[str | int, ...], int], loc: tuple[Any, ...]) -> int:
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1


def load_challenge(path: Path, known_environments: Iterable[str] | None = None) -> Challenge:
    """Parse and check one file; ``ChallengeError`` says where and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChallengeError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ChallengeError(f"{path}:{line}: invalid YAML: {problem}") from None
    if not isinstance(data, dict) or node is None:
        raise ChallengeError(f"{path}:1: a challenge file is a mapping of fields")
    lines: dict[tuple[str | int, ...], int] = {}
    _lines(node, (), lines)
    folder_set = path.parent.name
    data.setdefault("set", folder_set)
    data.setdefault("id", path.stem)
    try:
        challenge = Challenge.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(
            p
            for p in first["loc"]
            if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))
        )
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(lines, loc)
        raise ChallengeError(f"{path}:{line}: field '{field}': {first['msg']}") from None
    if challenge.set != folder_set:
        raise ChallengeError(
            f"{path}:{lines.get(('set',), 1)}: field 'set': "
            f"{challenge.set!r} differs from the folder {folder_set!r}"
        )
    if known_environments is not None:
        known = set(known_environments)
        for field, name in [
            ("environment", challenge.environment),
            *[(f"environments.{n}", n) for n in challenge.environments],
        ]:
            if name not in known:
                key = tuple(field.split("."))
                raise ChallengeError(
                    f"{path}:{lines.get(key, 1)}: field '{field}': unknown environment {name!r}; "
                    f"known: {', '.join(sorted(known))}"
                )
    return challenge


def challenge_files(paths: Iterable[Path]) -> list[Path]:
    """Every challenge file under the given files and folders, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
        elif path.suffix in SUFFIXES and path.is_file():
            found.append(path)
        else:
            raise ChallengeError(f"{path}: not a challenge file or folder")
    return found


def load_challenges(
    paths: Iterable[Path], known_environments: Iterable[str] | None = None
) -> list[Challenge]:
    """Load every file; a duplicate id is an error naming both files."""
    known = list(known_environments) if known_environments is not None else None
    seen: dict[str, Path] = {}
    challenges = []
    for path in challenge_files(paths):
        challenge = load_challenge(path, known)
        if challenge.qualified_id in seen:
            raise ChallengeError(
                f"{path}:1: field 'id': duplicate id {challenge.qualified_id!r}, "
                f"also in {seen[challenge.qualified_id]}"
            )
        seen[challenge.qualified_id] = path
        challenges.append(challenge)
    return challenges
