"""The optional bearer token: when the server is started with one, every API call needs it.

The page and its static files stay public (they hold no data); the page asks for the token
when the API answers 401 and sends it as ``Authorization: Bearer <token>``. Compared in
constant time.
"""

from __future__ import annotations

import secrets

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vaekit.serve.errors import ApiError

bearer = HTTPBearer(auto_error=False, description="Needed when the server was started with --token.")


async def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Refuse the request (401) unless it carries the server's token; a no-op without one. Async so that
    FastAPI calls it on the event loop instead of a worker thread (a thread hop per request)."""
    token: str | None = request.app.state.token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')")
