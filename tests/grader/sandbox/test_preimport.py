"""Which pre-import profile a run starts from, decided from the snippet's imports."""

from __future__ import annotations

import pytest

from grader.domain import RunMode, RunRequest
from grader.sandbox.preimport import (
    PreimportProfile,
    imported_roots,
    learner_profile_for,
    modules_for,
    profile_for,
)

PREIMPORT = ("fastapi", "httpx", "pytest")


def script(*files: tuple[str, str]) -> RunRequest:
    return RunRequest(mode=RunMode.SCRIPT, files=dict(files), entry=files[0][0])


@pytest.mark.parametrize(
    ("source", "roots"),
    [
        ("print(1)\n", frozenset()),
        ("import os, json\n", frozenset({"os", "json"})),
        ("import os.path as p\n", frozenset({"os"})),
        ("from fastapi.testclient import TestClient\n", frozenset({"fastapi"})),
        ("def f():\n    import httpx\n", frozenset({"httpx"})),
        ("from . import sibling\nfrom .pkg import x\n", frozenset()),
        ("try:\n    import ujson\nexcept ImportError:\n    pass\n", frozenset({"ujson"})),
    ],
)
def test_imported_roots(source: str, roots: frozenset[str]) -> None:
    assert imported_roots(source) == roots


@pytest.mark.parametrize("source", ["def f(:\n", "x = '\0'\n", "(" * 500 + ")" * 500])
def test_unparsable_sources_cannot_be_told(source: str) -> None:
    assert imported_roots(source) is None


def test_oversized_sources_are_not_parsed() -> None:
    assert imported_roots("x = 1\n" * 60_000) is None


@pytest.mark.parametrize(
    ("request_", "profile"),
    [
        (script(("main.py", "print(sum(range(10)))\n")), PreimportProfile.BARE),
        (script(("main.py", "import asyncio, json\nprint(1)\n")), PreimportProfile.BARE),
        (script(("main.py", "import fastapi\n")), PreimportProfile.FULL),
        (script(("main.py", "import requests\n")), PreimportProfile.FULL),  # not stdlib: be safe
        (script(("main.py", "def f(:\n")), PreimportProfile.FULL),
        (script(("main.py", "import helper\n"), ("helper.py", "X = 1\n")), PreimportProfile.BARE),
        (script(("main.py", "import pkg.mod\n"), ("pkg/mod.py", "X = 1\n")), PreimportProfile.BARE),
        (script(("main.py", "print(1)\n"), ("helper.py", "import httpx\n")), PreimportProfile.FULL),
        (script(("main.py", "print(1)\n"), ("data.txt", "import httpx\n")), PreimportProfile.BARE),
        (
            RunRequest(
                mode=RunMode.PYTEST, files={"test_x.py": "def test(): pass\n"}, entry="test_x.py"
            ),
            PreimportProfile.FULL,
        ),
    ],
)
def test_profile_for(request_: RunRequest, profile: PreimportProfile) -> None:
    assert profile_for(request_, PREIMPORT) is profile


def test_an_image_without_preimports_is_always_bare() -> None:
    pytest_run = RunRequest(mode=RunMode.PYTEST, files={"t.py": "import pytest\n"}, entry="t.py")
    assert profile_for(pytest_run, ()) is PreimportProfile.BARE
    assert profile_for(script(("main.py", "import fastapi\n")), ()) is PreimportProfile.BARE


@pytest.mark.parametrize(
    ("files", "profile"),
    [
        ({"solution.py": "from fastapi import FastAPI\nfrom pydantic import BaseModel\n"}, "serve"),
        ({"solution.py": "def add(a, b):\n    return a + b\n"}, "bare"),
        ({"solution.py": "import helper\n", "helper.py": "import json\n"}, "bare"),
        ({"solution.py": "import helper\n", "helper.py": "import httpx\n"}, "serve"),
        ({"solution.py": "import pytest\n\n@pytest.fixture\ndef client(): ...\n"}, "full"),
        ({"solution.py": "import pytest_asyncio\n"}, "full"),
        ({"solution.py": "def f(:\n"}, "full"),  # cannot be told: everything
    ],
)
def test_the_learners_side_imports_what_the_learners_files_need(
    files: dict[str, str], profile: str
) -> None:
    """An isolated run's learner container pre-imports pytest only when the learner does."""
    assert learner_profile_for(files, PREIMPORT) is PreimportProfile(profile)
    assert learner_profile_for(files, ()) is PreimportProfile.BARE


def test_a_serve_container_leaves_test_tooling_out() -> None:
    """``serve`` imports the environment's packages but pytest and its plugins."""
    preimport = ("fastapi", "httpx", "pydantic", "pytest", "pytest_asyncio", "anyio")
    served = ("fastapi", "httpx", "pydantic", "anyio")
    assert modules_for(PreimportProfile.SERVE, preimport) == served
    assert modules_for(PreimportProfile.FULL, preimport) == preimport
    assert modules_for(PreimportProfile.JUDGE, preimport) == preimport
    assert modules_for(PreimportProfile.BARE, preimport) == ()
