"""One log format for every process: JSON lines on stderr, ours and the libraries' alike.

structlog renders our events; the standard library's records (uvicorn, Celery, kombu, httpx)
go through the same processors by ``ProcessorFormatter``, so each line is one JSON object
with ``timestamp``, ``level``, ``logger`` and ``event``, plus whatever the context bound:
``request_id`` in the API, ``task_id``, ``submission_id`` and ``request_id`` in the worker,
``container_id`` on sandbox events. One ``grep`` on an id follows a submission through.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from structlog.typing import EventDict, Processor

LogFormat = Literal["json", "console"]

# Libraries that install their own handlers: theirs are removed, so records reach ours once.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "celery", "celery.task")
_SILENCED = ("uvicorn.access",)
"""The API's own ``http_request`` line says more (route, request id, duration)."""

_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _drop_colour(_: object, __: str, event: EventDict) -> EventDict:
    """uvicorn adds a copy of its message with terminal colours: not for a log file."""
    event.pop("color_message", None)
    return event


def configure(level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Route structlog and the standard library to one handler on stderr in ``fmt``."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder(), _drop_colour],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    logging.captureWarnings(True)  # a library's warning is a line like any other
    for name in _SILENCED:
        silenced = logging.getLogger(name)
        silenced.handlers.clear()
        silenced.propagate = False
