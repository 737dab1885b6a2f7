"""`vaekit serve`: an HTTP API over trained runs and the latent explorer page.

One job per module: ``app`` (the FastAPI app factory), ``registry`` (which runs exist, each
model loaded once), ``batching`` (concurrent requests stacked into one forward pass),
``images`` (uploads checked and converted; PNG out), ``schemas`` (request and response
models, so the OpenAPI document is exact), ``errors`` (every failure as a 4xx JSON body),
``security`` (the optional bearer token), ``routes_*`` (the endpoints) and ``static/`` (the
page, plain HTML/CSS/JS: nothing to build).

FastAPI, uvicorn and python-multipart come with the ``vaekit[serve]`` extra; importing
``vaekit`` never needs them.
"""

from vaekit.serve.app import create_app

__all__ = ["create_app"]
