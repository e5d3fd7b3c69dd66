"""API keys (hashed at rest) with roles, and per-key rate limits kept in Redis."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..adapters.store import SubmissionStore
from ..domain.submission import Role
from ..errors import AuthError, Forbidden, RateLimited
from ..settings import ApiKey

KEY_PREFIX = "grd_"
_RANK = {Role.SUBMITTER: 0, Role.INSTRUCTOR: 1, Role.ADMIN: 2}


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key (shown once; only its hash is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """Looks keys up by hash, in constant time per key."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = keys

    def authenticate(self, raw: str | None) -> ApiKey:
        if not raw:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
        digest = hash_key(raw)
        found = None
        for key in self._keys:
            if hmac.compare_digest(key.sha256, digest):
                found = key
        if found is None:
            raise AuthError("unknown API key")
        return found


def require(key: ApiKey, role: Role) -> None:
    if _RANK[key.role] < _RANK[role]:
        raise Forbidden(f"this needs the {role.value} role; key {key.id!r} is {key.role.value}")


def has_role(key: ApiKey, role: Role) -> bool:
    return _RANK[key.role] >= _RANK[role]


class RateLimiter:
    """A sliding one-minute window per key (the ``limits`` library's moving window, in
    Redis); ``cost`` lets a batch count per item."""

    def __init__(self, store: SubmissionStore, default_per_minute: int) -> None:
        self._store = store
        self._default = default_per_minute

    def hit(self, key: ApiKey, cost: int = 1) -> None:
        limit = key.rate_per_minute or self._default
        retry_after = self._store.take_rate(key.id, limit, cost)
        if retry_after is not None:
            raise RateLimited(
                f"key {key.id!r} is over its limit of {limit} per minute", retry_after
            )
