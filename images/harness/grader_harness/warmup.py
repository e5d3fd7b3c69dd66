"""Warm-up before the fork: import the environment's packages and run one pytest session of our
own fixed tests, so the forked child starts with both already paid for.
"""

from __future__ import annotations

import importlib
import os
import sys


def preimport(modules: list[str]) -> dict[str, str]:
    """Import the environment's packages so the forked child starts warm."""
    failed: dict[str, str] = {}
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
    return failed


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
