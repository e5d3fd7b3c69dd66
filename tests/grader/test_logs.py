"""The log format of every process, checked in a child process (it replaces root handlers)."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import logging, structlog, warnings
from grader import logs
logs.configure("INFO", "json")
structlog.contextvars.bind_contextvars(request_id="r-1", submission_id="s-1")
structlog.get_logger("grader.x").info("ours", container_id="c-1")
logging.getLogger("uvicorn.error").info(
    "Started server process [%d]", 42, extra={"color_message": "Started [\x1b[36m%d\x1b[0m]"}
)
logging.getLogger("uvicorn.access").info("GET / 200")
logging.getLogger("celery.app.trace").info("Task %s succeeded", "t-1")
structlog.get_logger("grader.x").debug("hidden")
warnings.warn("running as root", UserWarning)
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
    events = [str(line["event"]) for line in lines]
    assert events[:3] == ["ours", "Started server process [42]", "Task t-1 succeeded"]
    assert "UserWarning: running as root" in events[3]
    assert events[4:] == ["crashed"]
    # uvicorn's access line is silenced (ours says more), debug is filtered out at INFO,
    # and every line carries the context.
    for line in lines:
        assert line["request_id"] == "r-1"
        assert line["submission_id"] == "s-1"
        assert str(line["timestamp"]).endswith("Z")
    assert lines[0]["container_id"] == "c-1"
    assert "color_message" not in lines[1]  # uvicorn's copy with terminal colours is dropped
    assert [line["logger"] for line in lines] == [
        "grader.x",
        "uvicorn.error",
        "celery.app.trace",
        "py.warnings",
        "grader.x",
    ]
    assert [line["level"] for line in lines] == ["info", "info", "info", "warning", "error"]
    assert "ZeroDivisionError: division by zero" in str(lines[4]["exception"])
