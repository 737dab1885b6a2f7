"""The API documentation pages work offline: /docs (Swagger UI) and /redoc load their scripts,
styles and icon from the server itself (fastapi-offline's files), never from a CDN."""

import re

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install vaekit[serve])")
from fastapi.testclient import TestClient

from vaekit.serve import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(None, pretrained=True)) as c:
        yield c


def referenced(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html) + \
        re.findall(r'spec-url="([^"]+)"', html)


@pytest.mark.parametrize("page, assets", [
    ("/docs", {".js": "javascript", ".css": "text/css", ".png": "image/png"}),
    ("/redoc", {".js": "javascript", ".png": "image/png"}),
])
def test_docs_pages_reference_only_local_files_that_are_served(client, page, assets):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text and "cdn" not in response.text
    urls = referenced(response.text)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "/openapi.json" in urls
    for suffix, kind in assets.items():
        found = [url for url in urls if url.endswith(suffix)]
        assert found, f"{page} references no {suffix} file"
        for url in found:
            asset = client.get(url)
            assert asset.status_code == 200 and kind in asset.headers["content-type"] and len(asset.content) > 100


def test_the_docs_pages_stay_out_of_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith(("/docs", "/redoc")) for path in paths)
