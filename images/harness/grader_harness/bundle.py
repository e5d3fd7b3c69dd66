"""One file of compiled modules, so pre-importing reads one file instead of about a thousand.

Every file operation inside a container goes through the storage driver (``fuse-overlayfs`` on
our hosts: a user-space process per container). Importing the environment's packages the usual
way stats, opens and reads each module's ``.pyc`` and lists each package folder: about a
thousand small operations per container start, paid again for every submission. The image
build writes the compiled code of every module the pre-import loads into ``modules.bundle``;
at start the supervisor maps that one file and imports from it.

Nothing changes but where the code object comes from: each module keeps its real ``__file__``,
``__spec__.origin``, ``__path__`` and a :class:`BundledLoader` (a ``SourceFileLoader``), so
``inspect.getsource``, ``importlib.resources`` and tracebacks read the real files. The finder
serves a module only where the normal path search would have found that very file (its folder
is on ``sys.path`` or in the parent package's ``__path__``), and only while installed: the
supervisor removes it and closes the map before any child exists. A module the bundle lacks, or
one imported later, is found and loaded from disk as always.

Layout: ``HEADER``, ``importlib.util.MAGIC_NUMBER``, the index's length (8 bytes, little
endian), the index (``marshal``: name -> (origin, is_package, offset, length)), then the code
objects (``marshal``), offsets counted from the end of the index. The file is written at build
time by the image's own interpreter into the read-only image: it is never written at run time,
and its magic number ties it to the interpreter that reads it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import marshal
import mmap
import os
import sys
from collections.abc import Mapping, Sequence
from types import CodeType, ModuleType

__all__ = [
    "HEADER",
    "PATH",
    "BundleFinder",
    "BundledLoader",
    "bundled",
    "install",
    "uninstall",
    "write",
]

HEADER = b"GRBUNDLE1\n"
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules.bundle")
"""Where the image build writes the bundle: beside the harness, in the read-only image."""
_LENGTH_BYTES = 8

Entry = tuple[str, bool, int, int]
"""origin, is_package, offset, length."""


class BundleFinder:
    """A meta path finder for the modules of one bundle (see the module's docstring)."""

    def __init__(self, view: mmap.mmap, index: Mapping[str, Entry], base: int) -> None:
        self._view: mmap.mmap | None = view
        self._index = index
        self._base = base

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        entry = self._index.get(fullname)
        if entry is None or self._view is None:
            return None
        origin, is_package, _, _ = entry
        folder = os.path.dirname(origin)
        home = os.path.dirname(folder) if is_package else folder
        if home not in (sys.path if path is None else path):
            return None  # the path search would not find this file: let it decide
        return importlib.util.spec_from_file_location(
            fullname,
            origin,
            loader=BundledLoader(fullname, origin, self),
            submodule_search_locations=[folder] if is_package else None,
        )

    def code(self, fullname: str) -> CodeType | None:
        """The bundled code of ``fullname``; None once closed or when it is not bundled."""
        entry = self._index.get(fullname)
        if entry is None or self._view is None:
            return None
        _, _, offset, length = entry
        start = self._base + offset
        code = marshal.loads(self._view[start : start + length])  # noqa: S302  our own build's file
        return code if isinstance(code, CodeType) else None

    def close(self) -> None:
        if self._view is not None:
            self._view.close()
            self._view = None


class BundledLoader(importlib.machinery.SourceFileLoader):
    """A ``SourceFileLoader`` whose code comes from the bundle while it is open."""

    def __init__(self, fullname: str, path: str, finder: BundleFinder) -> None:
        super().__init__(fullname, path)
        self._finder = finder

    def get_code(self, fullname: str) -> CodeType | None:
        code = self._finder.code(fullname)
        return code if code is not None else super().get_code(fullname)


class _Installed:
    finder: BundleFinder | None = None


def install(path: str = PATH) -> bool:
    """Serve imports from the bundle at ``path``; False (nothing changed) when it is unusable."""
    if _Installed.finder is not None:
        return True
    try:
        with open(path, "rb") as handle:
            view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return False
    parsed = _read_index(view)
    if parsed is None:
        view.close()
        return False
    index, base = parsed
    _Installed.finder = BundleFinder(view, index, base)
    sys.meta_path.insert(0, _Installed.finder)
    return True


def _read_index(view: mmap.mmap) -> tuple[dict[str, Entry], int] | None:
    """The index and where the code objects start; None for a file that is not our bundle."""
    prefix = len(HEADER) + len(importlib.util.MAGIC_NUMBER)
    if view[: len(HEADER)] != HEADER or view[len(HEADER) : prefix] != importlib.util.MAGIC_NUMBER:
        return None  # not a bundle, or one of another interpreter
    size = int.from_bytes(view[prefix : prefix + _LENGTH_BYTES], "little")
    start = prefix + _LENGTH_BYTES
    try:
        index = marshal.loads(view[start : start + size])  # noqa: S302  our own build's file
    except (ValueError, EOFError, TypeError):
        return None
    return (index, start + size) if isinstance(index, dict) else None


def uninstall() -> None:
    """Remove the finder and close the map; bundled modules' loaders fall back to the files."""
    finder, _Installed.finder = _Installed.finder, None
    if finder is None:
        return
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    finder.close()


def bundled(modules: Mapping[str, ModuleType]) -> dict[str, tuple[str, bool, bytes]]:
    """What to bundle of ``modules``: name -> (origin, is_package, marshalled code).

    Only modules loaded by a plain ``SourceFileLoader`` from a ``.py`` file with a compiled
    file in step with it: built-in, frozen and extension modules, namespace packages and
    anything another loader produced (pytest's rewritten test modules) stay as they are, and so
    does the module run as ``__main__``.
    """
    chosen: dict[str, tuple[str, bool, bytes]] = {}
    for name, module in list(modules.items()):
        spec = getattr(module, "__spec__", None)
        if spec is None or name == "__main__":
            continue
        if type(spec.loader) is not importlib.machinery.SourceFileLoader:
            continue
        origin = spec.origin
        if not isinstance(origin, str) or not origin.endswith(".py"):
            continue
        data = _current_code(origin)
        if data is not None:
            chosen[name] = (origin, spec.submodule_search_locations is not None, data)
    return chosen


def _current_code(origin: str) -> bytes | None:
    """The marshalled code of ``origin``'s compiled file when it matches the source, else None."""
    try:
        cached = importlib.util.cache_from_source(origin)
        with open(cached, "rb") as handle:
            data = handle.read()
        with open(origin, "rb") as handle:
            source = handle.read()
    except (OSError, NotImplementedError, ValueError):
        return None
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
        return None
    flags = int.from_bytes(data[4:8], "little")
    if flags & 0b1:  # hash-based: the source's hash must match
        if data[8:16] != importlib.util.source_hash(source):
            return None
    else:  # timestamp-based: mtime and size must match
        stat = os.stat(origin)
        if int.from_bytes(data[8:12], "little") != int(stat.st_mtime) & 0xFFFFFFFF:
            return None
        if int.from_bytes(data[12:16], "little") != stat.st_size & 0xFFFFFFFF:
            return None
    return data[16:]


def write(path: str, modules: Mapping[str, tuple[str, bool, bytes]]) -> int:
    """Write a bundle of ``modules`` (as :func:`bundled` gives them) to ``path``; its count."""
    index: dict[str, Entry] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, (origin, is_package, data) in sorted(modules.items()):
        index[name] = (origin, is_package, offset, len(data))
        blobs.append(data)
        offset += len(data)
    encoded = marshal.dumps(index)
    temporary = f"{path}.part"
    with open(temporary, "wb") as handle:
        handle.write(HEADER + importlib.util.MAGIC_NUMBER)
        handle.write(len(encoded).to_bytes(_LENGTH_BYTES, "little"))
        handle.write(encoded)
        handle.writelines(blobs)
    os.replace(temporary, path)
    return len(index)
