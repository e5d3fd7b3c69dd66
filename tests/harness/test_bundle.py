"""The pre-import bundle (``grader_harness.bundle``), in-process on small packages of our own."""

from __future__ import annotations

import gc
import importlib
import importlib.machinery
import importlib.util
import py_compile
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "images" / "harness"))

from grader_harness import bundle, warmup

NAMES = ("bundpkg", "bundpkg.sub", "bundplain", "bundstale")


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path with a package, a submodule and a module, all compiled."""
    root = tmp_path / "site"
    (root / "bundpkg").mkdir(parents=True)
    (root / "bundpkg" / "__init__.py").write_text("from . import sub\nNAME = 'package'\n")
    (root / "bundpkg" / "sub.py").write_text("VALUE = 1\n")
    (root / "bundplain.py").write_text("def answer():\n    return 42\n")
    (root / "bundstale.py").write_text("VALUE = 'old'\n")
    for path in root.rglob("*.py"):
        checked = path.name == "bundstale.py"  # so that importing it from disk sees the change
        mode = py_compile.PycInvalidationMode
        py_compile.compile(
            str(path), invalidation_mode=mode.CHECKED_HASH if checked else mode.UNCHECKED_HASH
        )
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        bundle.uninstall()
        sys.path.remove(str(root))
        for name in NAMES:
            sys.modules.pop(name, None)
        importlib.invalidate_caches()


def build(root: Path, path: Path) -> int:
    """Import the tree's modules from disk and bundle them, as the image build does."""
    for name in ("bundpkg", "bundplain", "bundstale"):
        importlib.import_module(name)
    (root / "bundstale.py").write_text("VALUE = 'changed after compiling'\n")  # pyc now stale
    chosen = bundle.bundled({name: sys.modules[name] for name in NAMES})
    count = bundle.write(str(path), chosen)
    for name in NAMES:
        sys.modules.pop(name)
    return count


def test_only_modules_with_a_current_compiled_file_are_bundled(tree: Path, tmp_path: Path) -> None:
    """The stale module is left out: its compiled file no longer matches its source."""
    assert build(tree, tmp_path / "modules.bundle") == 3


def test_modules_come_from_the_bundle_with_their_real_locations(tree: Path, tmp_path: Path) -> None:
    """The code is the bundle's (the files changed since), ``__file__`` and ``__path__`` real."""
    path = tmp_path / "modules.bundle"
    build(tree, path)
    (tree / "bundpkg" / "sub.py").write_text("VALUE = 2\n")
    (tree / "bundplain.py").write_text("def answer():\n    return 0\n")
    for pyc in tree.rglob("*.pyc"):
        pyc.unlink()
    assert bundle.install(str(path))
    bundpkg = importlib.import_module("bundpkg")
    bundplain = importlib.import_module("bundplain")

    assert bundpkg.sub.VALUE == 1
    assert bundplain.answer() == 42
    assert bundpkg.NAME == "package"
    assert bundpkg.__file__ == str(tree / "bundpkg" / "__init__.py")
    assert bundpkg.__path__ == [str(tree / "bundpkg")]
    assert bundpkg.sub.__file__ == str(tree / "bundpkg" / "sub.py")
    assert type(bundplain.__loader__) is bundle.BundledLoader
    assert isinstance(bundplain.__loader__, importlib.machinery.SourceFileLoader)
    assert bundplain.__loader__.get_source("bundplain") == "def answer():\n    return 0\n"


def test_a_module_the_bundle_lacks_is_imported_from_disk(tree: Path, tmp_path: Path) -> None:
    path = tmp_path / "modules.bundle"
    build(tree, path)
    assert bundle.install(str(path))
    bundstale = importlib.import_module("bundstale")

    assert bundstale.VALUE == "changed after compiling"
    assert type(bundstale.__loader__) is importlib.machinery.SourceFileLoader


def test_a_folder_not_on_the_path_is_not_served(tree: Path, tmp_path: Path) -> None:
    """Off sys.path, the finder declines and the import fails as it would without it."""
    path = tmp_path / "modules.bundle"
    build(tree, path)
    sys.path.remove(str(tree))
    try:
        assert bundle.install(str(path))
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("bundplain")
    finally:
        sys.path.insert(0, str(tree))


def test_uninstall_removes_the_finder_and_loaders_fall_back_to_the_files(
    tree: Path, tmp_path: Path
) -> None:
    path = tmp_path / "modules.bundle"
    build(tree, path)
    assert bundle.install(str(path))
    bundplain = importlib.import_module("bundplain")

    finders = [type(finder) for finder in sys.meta_path]
    assert finders.count(bundle.BundleFinder) == 1
    bundle.uninstall()
    assert bundle.BundleFinder not in [type(finder) for finder in sys.meta_path]
    (tree / "bundplain.py").write_text("def answer():\n    return 7\n")
    for pyc in tree.rglob("*.pyc"):
        pyc.unlink()
    loader = bundplain.__loader__
    assert isinstance(loader, bundle.BundledLoader)
    code = loader.get_code("bundplain")
    assert code is not None
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102  our own test module
    assert namespace["answer"]() == 7  # type: ignore[operator]


def test_installing_twice_keeps_one_finder(tree: Path, tmp_path: Path) -> None:
    path = tmp_path / "modules.bundle"
    build(tree, path)
    assert bundle.install(str(path))
    assert bundle.install(str(path))
    assert [type(finder) for finder in sys.meta_path].count(bundle.BundleFinder) == 1


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a bundle at all", id="foreign"),
        pytest.param(bundle.HEADER + b"\x00\x00\x00\x00" + bytes(8), id="other-interpreter"),
        pytest.param(
            bundle.HEADER + importlib.util.MAGIC_NUMBER + (1000).to_bytes(8, "little") + b"xx",
            id="truncated-index",
        ),
    ],
)
def test_an_unusable_file_changes_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "modules.bundle"
    path.write_bytes(content)
    before = list(sys.meta_path)
    assert not bundle.install(str(path))
    assert sys.meta_path == before


def test_a_missing_file_changes_nothing(tmp_path: Path) -> None:
    before = list(sys.meta_path)
    assert not bundle.install(str(tmp_path / "absent.bundle"))
    assert sys.meta_path == before


def test_preimport_removes_the_bundle_whatever_the_profile(tree: Path, tmp_path: Path) -> None:
    """``__main__`` installs it; ``preimport`` (bare or full) leaves no finder for a child."""
    path = tmp_path / "modules.bundle"
    build(tree, path)
    for modules in ([], ["bundplain"]):
        assert bundle.install(str(path))
        assert warmup.preimport(modules) == {}
        assert bundle.BundleFinder not in [type(finder) for finder in sys.meta_path]
    gc.unfreeze()  # preimport froze this test process's objects
