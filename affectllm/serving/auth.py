"""Bearer-key authentication for ``affectllm serve --api-key``: a FastAPI dependency, constant-time compare."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from affectllm.serving.errors import RequestError

_bearer = HTTPBearer(auto_error=False, description="the key given to `affectllm serve --api-key`")


def require_api_key(api_key: str) -> Callable[..., None]:
    """A dependency that refuses (401) requests without ``Authorization: Bearer <api_key>``."""
    expected = api_key.encode()

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if credentials is None:
            raise RequestError(401, "missing API key: send the header 'Authorization: Bearer <key>'",
                               code="missing_api_key")
        if not secrets.compare_digest(credentials.credentials.encode(), expected):
            raise RequestError(401, "incorrect API key; use the key the server was started with (--api-key)",
                               code="invalid_api_key")

    return check
