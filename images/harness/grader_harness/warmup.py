"""Warm-up before the fork: import the environment's packages and run one pytest session of our
own fixed tests, so the forked child starts with both already paid for.

The imports come from ``modules.bundle`` (``bundle.py``), written when the image is built by
``python -I -m grader_harness.warmup --bundle`` with the same modules: one mapped file instead
of about a thousand small reads through the storage driver. ``__main__`` installs it before
importing the harness itself; :func:`preimport` removes it, whatever the profile, before the
supervisor forks anything. The cyclic garbage collector stays
off while importing (imports allocate much and free little: its passes find nothing) and the
imported objects are then frozen out of its generations, so neither this process nor a forked
child spends time traversing them (nor touches their pages, which stay shared).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

from . import bundle

HARNESS = ("grader_harness.supervisor", "grader_harness.child")
"""What ``python -I -m grader_harness`` imports before it pre-imports: bundled as well."""


def preimport(modules: list[str]) -> dict[str, str]:
    """Import the environment's packages so the forked child starts warm; then drop the bundle."""
    failed: dict[str, str] = {}
    if not modules:
        bundle.uninstall()
        return failed
    gc.disable()
    bundle.install()
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
        if "pytest" in modules and "pytest" not in failed:
            try:
                warm_pytest()
            except Exception as exc:
                failed["pytest-warmup"] = f"{type(exc).__name__}: {exc}"
    finally:
        bundle.uninstall()
        gc.collect()
        gc.freeze()
        gc.enable()
    return failed


def write_bundle(modules: list[str], path: str = bundle.PATH) -> int:
    """Import the harness and ``modules`` as a container's start does, and bundle what loaded."""
    if os.path.exists(path):
        os.remove(path)  # a stale bundle must not serve this very run
    for name in HARNESS:
        importlib.import_module(name)
    failed = preimport(modules)
    if failed:
        raise RuntimeError(f"pre-import failed at build time: {failed}")
    return bundle.write(path, bundle.bundled(sys.modules))


def main(argv: list[str]) -> int:
    """``python -I -m grader_harness.warmup --bundle [MODULE...]`` (default: ``$PREIMPORT``)."""
    if argv[:1] != ["--bundle"]:
        print("usage: python -I -m grader_harness.warmup --bundle [MODULE...]", file=sys.stderr)
        return 2
    modules = argv[1:] or os.environ.get("PREIMPORT", "").split()
    if not modules:
        print("nothing to pre-import: no bundle written", file=sys.stderr)
        return 0
    count = write_bundle(modules)
    print(f"{bundle.PATH}: {count} modules", file=sys.stderr)
    return 0


WARMUP_TEST = """
import pytest

@pytest.mark.asyncio
async def test_async():
    assert [1] == [1]

def test_sync():
    assert True
"""


def warm_pytest() -> None:
    """Run one session of our own fixed tests so the child's first session is fast.

    pytest loads its plugins, entry points and assertion rewriter lazily on the first
    ``pytest.main`` (about 0.2 s here); doing that before the fork moves the cost off the
    submission's path. No snippet code is involved. Nothing may reach fd 1, the report
    channel, so both standard descriptors point at /dev/null meanwhile.
    """
    import shutil  # here: with bz2 and lzma it costs a bare container's start-up ~11 ms

    import pytest

    from .pytest_plugin import QuietTerminal, pytest_args

    folder = "/tmp/grader-warmup"  # noqa: S108  the container's private tmpfs
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "test_grader_warmup.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(WARMUP_TEST)
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        pytest.main(pytest_args(path, folder), plugins=[QuietTerminal()])
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
        sys.modules.pop("test_grader_warmup", None)
        shutil.rmtree(folder, ignore_errors=True)
        _drop_event_loop()


def _drop_event_loop() -> None:
    """Close any event loop the warm-up left set: the child must start without one.

    Its selector and self-pipe descriptors would be closed in the child anyway, leaving a
    broken loop for the snippet's ``asyncio.get_event_loop()``.
    """
    import asyncio
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            loop = None
    if loop is not None and not loop.is_closed():
        loop.close()
    asyncio.set_event_loop(None)
    gc.collect()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
