"""Every failure a client can cause becomes a 4xx JSON body ``{"error": "...", "detail": [...]}``.

Library errors (``VaekitError``: a one-line message naming the field) are 400; request
validation (a wrong type, NaN, a missing field) is 422 with the fields that failed, without
echoing the input (which may itself hold NaN, not valid JSON); upload limits are 413/415.
An unexpected exception is a bug: it is logged on the server and answered with a plain 500
body, never a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vaekit.errors import VaekitError

log = logging.getLogger("vaekit.serve")


class ApiError(Exception):
    """A client error with its HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _body(message: str, detail: list | None = None) -> dict:
    return {"error": message} if detail is None else {"error": message, "detail": detail}


def _validation_detail(exc: RequestValidationError) -> list[dict]:
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()]


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a JSON error body."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.message), status_code=exc.status)

    @app.exception_handler(VaekitError)
    async def vaekit_error(request: Request, exc: VaekitError) -> JSONResponse:
        return JSONResponse(_body(str(exc)), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _validation_detail(exc)
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
        return JSONResponse(_body(f"{where or 'request'}: {first['msg']}", detail), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(_body("internal server error (see the server log)"), status_code=500)
