"""`vaekit serve` and `vaekit export`: thin commands over ``vaekit.serve`` and ``vaekit.export``.

Registered on the main app by ``vaekit.cli.app``; errors surface through its ``main`` as one
line and exit status 2, like every other command. The serve extra (FastAPI, uvicorn) is
imported inside ``serve``: it is optional, and ``vaekit --help`` must work without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from vaekit.cli import options
from vaekit.cli.options import out_console as console
from vaekit.errors import VaekitError
from vaekit.export import export_run, onnx_paths

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(epilog="Examples:  vaekit serve runs  |  vaekit serve --pretrained  |  vaekit serve runs --port 8080  |  "
                    "vaekit serve runs --host 0.0.0.0 --token $(openssl rand -hex 16)")
def serve(
    runs_dir: Annotated[Optional[Path], typer.Argument(metavar="RUNS_DIR", help="A directory of run directories "
                                                      "(or one run); optional with --pretrained.")] = None,
    pretrained: Annotated[bool, typer.Option("--pretrained", help="Also serve the models shipped with vaekit, as "
                                                                "pretrained:NAME (read-only).")] = False,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback exposes the runs to the "
                                           "network (use --token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (1-65535).")] = 8000,
    token: Annotated[Optional[str], typer.Option(help="Bearer token every API call must carry (default: the "
                                                      "VAEKIT_SERVE_TOKEN environment variable).")] = None,
    batch_window_ms: Annotated[float, typer.Option(help="How long concurrent encode/decode requests wait to be "
                                                        "batched together; 0: batch only what is already queued."
                                                 )] = 1.0,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="Run every request alone.")] = False,
    threads: options.Threads = "auto",
) -> None:
    """Serve the runs of RUNS_DIR (and with --pretrained the zoo's models) over HTTP, with the latent explorer
    page at / and the API docs at /docs."""
    if not 1 <= port <= 65535:
        raise VaekitError(f"--port: expected a TCP port from 1 to 65535, got {port}")
    try:  # the optional serve extra
        import uvicorn

        from vaekit.serve import create_app
    except ImportError as exc:
        raise VaekitError(f"vaekit serve needs the serve extra ({exc.name} is missing): "
                          "pip install 'vaekit[serve]'") from None
    options.use_threads(threads)
    server = create_app(runs_dir, token=token, pretrained=pretrained,
                        batch_window_ms=None if no_batching else batch_window_ms)
    names = server.state.registry.names()
    protected = server.state.token is not None
    where = " and ".join(([str(runs_dir)] if runs_dir is not None else []) + (["the zoo"] if pretrained else []))
    console.print(f"serving {len(names)} run(s) of {where} ({', '.join(names) or 'none yet'}) at "
                  f"http://{host}:{port}/{'  (bearer token required)' if protected else ''}")
    if host not in ("127.0.0.1", "localhost", "::1") and not protected:
        console.print("[yellow]warning:[/yellow] bound beyond loopback without a token: anyone who can reach "
                      f"{host}:{port} can use these runs (set --token or VAEKIT_SERVE_TOKEN)")
    uvicorn.run(server, host=host, port=port, log_level=os.environ.get("VAEKIT_SERVE_LOG", "warning"))


@app.command(epilog="Examples:  vaekit export runs/demo --format onnx -o demo.onnx  |  "
                    "vaekit export runs/demo --format torchscript -o demo.pt")
def export(
    run_dir: options.RunDir,
    out: Annotated[Path, options.out("model.onnx (writes model.encoder.onnx and model.decoder.onnx) or model.pt "
                                     "(torchscript).")],
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Export a run's encoder and decoder: two ONNX graphs (x -> mean, logvar; z -> x_mean) or one TorchScript
    file with encode and decode methods."""
    options.writing(threads, out, overwrite, *(onnx_paths(out) if fmt == "onnx" else []))
    for path in export_run(run_dir, out, fmt):
        console.print(f"wrote {path}")

