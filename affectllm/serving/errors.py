"""The one exception type the serving code raises for a request it refuses, carrying its HTTP status.

Handlers in ``app`` turn it into OpenAI's error envelope ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
          413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error"}


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx), a message naming the problem and the fix."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "invalid_request_error")
