"""Web pages served by the API process: server-rendered, offline, signed-in by API key.

``install(app, settings)`` adds the session cookie, the static files and the pages. The pages
read what the API's handlers read (``ApiState``) and answer to the same roles.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from ..settings import Settings
from . import console, pages, play
from .session import SESSION_COOKIE, SESSION_SECONDS, session_secret

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_SECONDS,
        same_site="strict",
        https_only=settings.web.secure_cookie,
    )
    app.include_router(pages.router)  # before the mount: /static/highlight.css is a route
    app.include_router(play.router)
    app.include_router(console.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
