"""Sign-in with an API key, kept as a signed session cookie, and CSRF tokens for forms.

The cookie (Starlette's ``SessionMiddleware``: signed with itsdangerous, ``HttpOnly``,
``SameSite=Strict``, ``Secure`` when configured) holds the key's id and a CSRF token, never
the key itself. Every request looks the id up among the configured keys again, so a key
removed from the settings signs its sessions out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from ..errors import Forbidden
from ..settings import ApiKey, Settings

SESSION_COOKIE = "grader_session"
SESSION_SECONDS = 8 * 3600
_KEY_ID = "key_id"
_CSRF = "csrf"


def session_secret(settings: Settings) -> str:
    """The configured secret, or one derived from the keys' hashes (stable across replicas).

    The hashes of random keys are as unguessable as the keys; whoever reads them reads the
    whole configuration anyway. A new key set makes a new secret: everyone signs in again.
    """
    if settings.web.session_secret is not None:
        return settings.web.session_secret.get_secret_value()
    material = "\n".join(sorted(key.sha256 for key in settings.api.keys))
    return hmac.new(b"grader-web-session", material.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use (also before sign-in)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get(_CSRF)
    if not (
        isinstance(expected, str)
        and submitted
        and secrets.compare_digest(expected.encode(), submitted.encode())
    ):
        raise Forbidden("the form is stale or came from another site: reload the page")


def sign_in(request: Request, key: ApiKey) -> None:
    """A fresh session for ``key`` (a new CSRF token: none from before sign-in survives)."""
    request.session.clear()
    request.session[_KEY_ID] = key.id
    request.session[_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


def signed_in(request: Request, keys: list[ApiKey]) -> ApiKey | None:
    key_id = request.session.get(_KEY_ID)
    return next((key for key in keys if key.id == key_id), None)
