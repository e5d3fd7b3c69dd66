"""Several files in one run: the paths a request may name, and a challenge's file policy.

Paths are relative POSIX paths under the sandbox's work directory: no absolute path, no
``..`` or ``.`` part, no empty part, no backslash, no NUL or other control character, at most
100 characters (what the harness accepts), and not the harness's reserved options file.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import Rejected

MAX_PATH_CHARS = 100
RESERVED_FILES = frozenset({".grader-run.json"})
"""Names the harness uses itself (``grader.sandbox.protocol.OPTIONS_FILE``)."""


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file of a run, or None when it can."""
    if not path:
        return "is empty"
    if len(path) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if "\x00" in path:
        return "contains a NUL character"
    if "\\" in path:
        return "contains a backslash (use '/' between folders)"
    if not path.isprintable():
        return "contains a control character"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is absolute (give a path relative to the work directory)"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' part"
    if path in RESERVED_FILES:
        return "is reserved for the harness"
    return None


def check_files(
    files: Mapping[str, str],
    *,
    entry: str,
    max_files: int,
    max_bytes: int,
    allowed: tuple[str, ...] | None = None,
) -> None:
    """Refuse a file set that is too large (413) or names a bad or unallowed path (422)."""
    if len(files) > max_files:
        raise Rejected(f"files: {len(files)} files; at most {max_files} are allowed", 413)
    size = sum(len(path.encode()) + len(text.encode()) for path, text in files.items())
    if size > max_bytes:
        raise Rejected(f"files: {size} bytes in all; at most {max_bytes} are allowed", 413)
    for path in files:
        problem = path_problem(path)
        if problem is not None:
            raise Rejected(f"files: path {path!r} {problem}", 422)
        if allowed is not None and not any(fnmatchcase(path, rule) for rule in allowed):
            raise Rejected(
                f"files: path {path!r} is not allowed here; allowed: {', '.join(allowed)}", 422
            )
    if entry not in files:
        raise Rejected(f"entry {entry!r} is not among the files ({', '.join(files)})", 422)


class FilesPolicy(BaseModel):
    """A challenge that takes several files: which file runs, and which paths may be sent.

    ``allowed`` are shell-style patterns matched against the whole path (``*`` also matches
    ``/``). For a ``tests`` challenge the entry is the module the hidden tests import.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: str = "main.py"
    allowed: tuple[str, ...] = Field(default=("*.py",), min_length=1)
    max_files: int = Field(default=10, ge=1, le=50)

    @model_validator(mode="after")
    def _entry_allowed(self) -> FilesPolicy:
        problem = path_problem(self.entry)
        if problem is not None:
            raise ValueError(f"entry {self.entry!r} {problem}")
        if not any(fnmatchcase(self.entry, rule) for rule in self.allowed):
            raise ValueError(f"entry {self.entry!r} matches none of the allowed patterns")
        return self
