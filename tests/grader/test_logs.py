"""The log format of every process, checked in a child process (it replaces root handlers)."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import logging, structlog
from grader import logs
logs.configure("INFO", "json")
structlog.contextvars.bind_contextvars(request_id="r-1", submission_id="s-1")
structlog.get_logger("grader.x").info("ours", container_id="c-1")
logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
logging.getLogger("celery.app.trace").info("Task %s succeeded", "t-1")
structlog.get_logger("grader.x").debug("hidden")
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("grader.x").exception("crashed")
"""


def _lines() -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == ""
    return [json.loads(line) for line in done.stderr.splitlines()]


def test_ours_and_the_libraries_lines_are_json_with_the_bound_ids() -> None:
    lines = _lines()
    assert [line["event"] for line in lines] == [
        "ours",
        "Started server process [42]",
        "Task t-1 succeeded",
        "crashed",
    ]
    for line in lines:  # debug is filtered out at INFO; every line carries the context
        assert line["request_id"] == "r-1"
        assert line["submission_id"] == "s-1"
        assert str(line["timestamp"]).endswith("Z")
    assert lines[0]["container_id"] == "c-1"
    assert [line["logger"] for line in lines] == [
        "grader.x",
        "uvicorn.error",
        "celery.app.trace",
        "grader.x",
    ]
    assert [line["level"] for line in lines] == ["info", "info", "info", "error"]
    assert "ZeroDivisionError: division by zero" in str(lines[3]["exception"])
