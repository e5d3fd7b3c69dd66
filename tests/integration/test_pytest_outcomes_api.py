"""The pytest-outcomes set graded through the API: HTTP -> Redis -> a real worker -> Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from grader.testing import WorkerProcess
from tests.integration.test_api_e2e import submit_and_wait

pytestmark = pytest.mark.docker

SET = "pytest-outcomes"
FOLDER = Path(__file__).resolve().parents[2] / "challenges" / SET
NAMES = sorted(path.stem for path in FOLDER.glob("*.yaml"))


def challenge(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FOLDER / f"{name}.yaml").read_text())
    return data


def test_the_set_is_there() -> None:
    """The set holds at least the six challenges the issue asks for."""
    assert len(NAMES) >= 6


@pytest.mark.asyncio
@pytest.mark.parametrize("name", NAMES)
async def test_the_reference_code_passes_and_a_wrong_choice_fails(
    api: httpx.AsyncClient, worker_process: WorkerProcess, name: str
) -> None:
    """Each challenge's own code passes in its pinned environment; a wrong choice fails."""
    data = challenge(name)
    qualified = f"{SET}/{name}"
    right = await submit_and_wait(api, {"challenge_id": qualified, "code": data["code"]})
    assert right["status"] == "done"
    assert right["result"]["status"] == "passed", right["result"]["reason"]
    assert right["result"]["environment"]["name"] == data["environment"]
    wrong = next(o["label"] for o in data["options"] if o["label"] != data["answer"])
    chosen = await submit_and_wait(api, {"challenge_id": qualified, "choice": wrong})
    assert chosen["result"]["status"] == "failed"
    keyed = await submit_and_wait(api, {"challenge_id": qualified, "choice": data["answer"]})
    assert keyed["result"]["status"] == "passed"


@pytest.mark.asyncio
async def test_marking_the_async_test_changes_the_outcome_and_fails(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    """Code whose test passes instead of being skipped fails the outcome expectation."""
    code = challenge("q1-unmarked-async-test")["code"].replace(
        "async def test_ping", "@pytest.mark.asyncio\nasync def test_ping"
    )
    result = await submit_and_wait(
        api, {"challenge_id": f"{SET}/q1-unmarked-async-test", "code": code}
    )
    assert result["status"] == "done"
    assert result["result"]["status"] == "failed"
    observation = result["result"]["observation"]
    assert [t["outcome"] for t in observation["tests"]] == ["passed"]
