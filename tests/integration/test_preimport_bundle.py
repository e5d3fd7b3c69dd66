"""The pre-import bundle on the real path: built into every image, used at start, gone before
the snippet runs (``docs/harness.md``, "Pre-import")."""

from __future__ import annotations

import json

import pytest

from grader.domain import RunStatus
from tests.conftest import NEW_ENV, OLD_ENV, Runner

pytestmark = pytest.mark.docker

PROBE = """
import gc, json, sys
import fastapi, pydantic, pytest
from grader_harness import bundle
print(json.dumps({
    "loaders": sorted({type(m.__loader__).__name__ for m in (fastapi, pydantic, pytest)}),
    "fastapi_file": fastapi.__file__,
    "finders": [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path],
    "installed": bundle._Installed.finder is not None,
    "frozen": gc.get_freeze_count() > 0,
    "gc_enabled": gc.isenabled(),
    "source": len(__import__("inspect").getsource(fastapi.FastAPI)) > 0,
}))
"""


@pytest.mark.parametrize("env", [OLD_ENV, NEW_ENV])
def test_pre_imports_come_from_the_bundle_which_is_gone_before_the_snippet(
    run: Runner, env: str
) -> None:
    """The packages were loaded by the bundle's loader (real files kept), and the snippet's
    process has no bundle finder, the collector on, the pre-imported objects frozen."""
    obs = run.script(PROBE, env=env)
    assert obs.status is RunStatus.COMPLETED, obs
    seen = json.loads(obs.stdout.text)
    assert seen == {
        "loaders": ["BundledLoader"],
        "fastapi_file": seen["fastapi_file"],
        "finders": ["BuiltinImporter", "FrozenImporter", "PathFinder"],
        "installed": False,
        "frozen": True,
        "gc_enabled": True,
        "source": True,
    }
    assert seen["fastapi_file"].startswith("/opt/venv/lib/python3.11/site-packages/fastapi/")


def test_a_bare_container_drops_the_bundle_too(run: Runner) -> None:
    """A stdlib-only script gets a container without pre-imports: no finder left either."""
    obs = run.script(
        "import sys\nprint([getattr(f, '__name__', type(f).__name__) for f in sys.meta_path])"
    )
    assert obs.status is RunStatus.COMPLETED, obs
    assert obs.stdout.text.strip() == "['BuiltinImporter', 'FrozenImporter', 'PathFinder']"
