"""The FastAPI app: ``create_app(runs_dir)`` wires the registry, the endpoints, the page and the limits."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from vaekit.serve.errors import install_error_handlers
from vaekit.serve.images import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS
from vaekit.serve.registry import RunRegistry
from vaekit.serve.security import require_token

TOKEN_ENV = "VAEKIT_SERVE_TOKEN"
STATIC = Path(str(resources.files("vaekit.serve") / "static"))
#: Swagger UI and ReDoc's JS/CSS, from the fastapi-offline package (serve extra): /docs and /redoc
#: work without network access, where FastAPI's own pages load them from a CDN.
DOCS_ASSETS = Path(str(resources.files("fastapi_offline") / "static"))
DOCS_ASSETS_URL = "/docs-static"


class BodyLimit:
    """Refuse a request whose declared body is over ``max_bytes`` (413) before reading any of it.

    Uploads are then checked again by size as they are read (``images.read_upload``)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > self.max_bytes:
                from fastapi.responses import JSONResponse

                message = f"request body over the limit of {self.max_bytes} bytes" if length.isdigit() else \
                    "bad Content-Length header"
                await JSONResponse({"error": message}, status_code=413 if length.isdigit() else 400)(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves, what existed when it started (the modules, torch, the app itself)
    is frozen out of Python's cyclic garbage collector: a full collection would otherwise walk
    all of it, a pause of tens of milliseconds that lands on the requests then in flight and
    sets the slowest percentile's latency. At shutdown the objects are unfrozen and the model
    thread stops."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        app.state.executor.shutdown(wait=False)


def create_app(runs_dir: str | Path | None, token: str | None = None, *, pretrained: bool = False,
               batch_window_ms: float | None = 1.0, max_batch: int = 256, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_upload_pixels: int = MAX_UPLOAD_PIXELS) -> FastAPI:
    """The app serving the runs under ``runs_dir`` and, with ``pretrained``, the models shipped
    with vaekit as ``pretrained:NAME`` (``runs_dir`` may then be ``None``).

    ``token``: a bearer token every API call must carry (default: the ``VAEKIT_SERVE_TOKEN``
    environment variable; none when unset). ``batch_window_ms``: how long a micro-batch waits
    for more requests (``None``: no batching). Upload limits apply per file.
    """
    from vaekit.serve import routes_anomaly, routes_codes, routes_compression, routes_images, routes_runs

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaekit-model")
    window_s = None if batch_window_ms is None else batch_window_ms / 1000
    registry = RunRegistry(runs_dir, executor, pretrained=pretrained, window_s=window_s, max_batch=max_batch)
    app = FastAPI(title="vaekit", version="0.1.0", docs_url=None, redoc_url=None, lifespan=_lifespan,  # docs below
                  description="Encode, decode, sample, interpolate and score with trained vaekit runs. "
                              "Images come back as PNG bytes or base64 JSON; errors as {\"error\": \"...\"}.")
    app.state.registry = registry
    app.state.executor = executor
    app.state.token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    app.state.limits = {"max_bytes": max_upload_bytes, "max_pixels": max_upload_pixels}
    install_error_handlers(app)
    # flat: one routing level per request
    for module in (routes_runs, routes_codes, routes_images, routes_anomaly, routes_compression):
        app.include_router(module.router, dependencies=[Depends(require_token)])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_docs_pages(app)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.add_middleware(BodyLimit, max_bytes=2 * max_upload_bytes + 65536)
    return app


def _add_docs_pages(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with their scripts, styles and icon served from here."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{DOCS_ASSETS_URL}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - API",
                                   swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css", swagger_favicon_url=favicon)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - API",
                              redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js", redoc_favicon_url=favicon,
                              with_google_fonts=False)
