"""Load test of `vaekit serve` on loopback: requests/s and p50/p99 latency for encode, decode
and sample at several concurrencies, with and without micro-batching. Bounded: a fixed number
of requests per cell, then it stops by itself.

The server is a separate uvicorn process (``vaekit.serve.create_app`` over one run); the
client is aiohttp in this process, ``concurrency`` workers each sending its next request as
soon as the last one is answered. Both share the machine's cores unless pinned apart
(``--server-cpus`` / ``--client-cpus``), and a client on the same cores costs the server
throughput: say so next to the figures. Each cell also reports the server's CPU time per
request (from /proc), a figure that other load on the machine disturbs far less than
requests/s. Default model: an untrained MNIST-shaped MLP VAE
(784-512-256-20, the `vaekit train mnist` network; speed does not depend on the weights),
or ``--run`` a trained run. Each cell reports its ratio to the unbatched server at the same
concurrency, measured in the same run. JSON lines: the environment first, then one per cell.

    python benchmarks/serve.py                                   # everything on the cores given
    taskset -c 1 python benchmarks/serve.py --threads 1          # one core, server and client
    python benchmarks/serve.py --server-cpus 0,1 --threads 2     # the 2-core figure (client shares them)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from common import environment  # benchmarks/ is on sys.path when a script here runs

ENDPOINTS = ("decode", "encode", "sample")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_run(root: Path) -> Path:
    """An MNIST-shaped MLP VAE saved as a run directory (model section only)."""
    from vaekit.models import VAE, VAEConfig
    from vaekit.training.runs import save

    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 28, 28), latent_dim=20, arch="mlp", hidden=(512, 256)))
    path = root / "mnist-mlp"
    save(model, path)
    return path


SERVER = """
import sys, torch, uvicorn
torch.set_num_threads(int(sys.argv[3]))
from vaekit.serve import create_app
window = None if sys.argv[4] == "off" else float(sys.argv[4])
uvicorn.run(create_app(sys.argv[1], batch_window_ms=window), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


class Server:
    """A uvicorn process serving ``runs`` (optionally pinned to ``cpus``), up until ``stop``."""

    def __init__(self, runs: Path, *, batching: str, threads: int, cpus: str | None) -> None:
        self.port = free_port()
        command = [sys.executable, "-c", SERVER, str(runs), str(self.port), str(threads), batching]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.process = subprocess.Popen(command, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, session: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}")
            try:
                async with session.get(f"{self.url}/api/runs") as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("the server did not start in time")

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (user + system), from /proc."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def request_for(endpoint: str, name: str, latent_dim: int, size: int) -> tuple[str, dict[str, Any]]:
    generator = torch.Generator().manual_seed(0)
    if endpoint == "decode":
        z = torch.randn(latent_dim, generator=generator).tolist()
        return f"/api/runs/{name}/decode", {"z": z}
    if endpoint == "encode":
        return f"/api/runs/{name}/encode/row", {"x": torch.rand(size, generator=generator).tolist()}
    return f"/api/runs/{name}/sample", {"n": 16, "temperature": 0.8}


async def load(session: Any, url: str, body: dict[str, Any], *, requests: int, concurrency: int) -> dict[str, Any]:
    """Send ``requests`` POSTs with ``concurrency`` workers; latencies, errors and wall time."""
    import aiohttp

    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                async with session.post(url, data=data, headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    ms = sorted(1000 * t for t in latencies)
    return {"requests": len(ms), "errors": errors, "seconds": round(seconds, 3),
            "requests_per_s": round(len(ms) / seconds, 1), "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2)}


async def bench(args: argparse.Namespace, run: Path) -> list[dict[str, Any]]:
    import aiohttp

    from vaekit.training.runs import open_run

    model = open_run(run).model
    size = int(torch.Size(model.config.input_shape).numel())
    rows: list[dict[str, Any]] = []
    for batching in ("off", str(args.window_ms)):
        server = Server(run.parent, batching=batching, threads=args.threads, cpus=args.server_cpus)
        connector = aiohttp.TCPConnector(limit=max(args.concurrency))
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                await server.wait_ready(session)
                for endpoint in args.endpoints:
                    path, body = request_for(endpoint, run.name, model.config.latent_dim, size)
                    n = args.sample_requests if endpoint == "sample" else args.requests
                    for concurrency in args.concurrency:
                        await load(session, server.url + path, body, requests=max(20, n // 10),
                                   concurrency=concurrency)  # warm-up: connections, first batches
                        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
                        cell = await load(session, server.url + path, body, requests=n, concurrency=concurrency)
                        server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
                        cell.update(server_cpu_ms_per_request=round(1000 * server_cpu / n, 3),
                                    client_cpu_ms_per_request=round(1000 * client_cpu / n, 3),
                                    server_requests_per_cpu_s=round(n / server_cpu, 1) if server_cpu else None)
                        row = {"endpoint": endpoint, "concurrency": concurrency,
                               "batching": "off" if batching == "off" else f"window {args.window_ms} ms", **cell}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            server.stop()
    reference = {(r["endpoint"], r["concurrency"]): r["requests_per_s"] for r in rows if r["batching"] == "off"}
    for r in rows:
        r["throughput_vs_unbatched"] = round(r["requests_per_s"] / reference[(r["endpoint"], r["concurrency"])], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a run directory (default: an untrained MNIST MLP VAE)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per encode/decode cell")
    parser.add_argument("--sample-requests", type=int, default=300, help="requests per sample cell (16 images each)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    parser.add_argument("--window-ms", type=float, default=1.0, help="the batching window of the batched server")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    parser.add_argument("--server-cpus", help="taskset CPU list for the server, e.g. 0,1")
    parser.add_argument("--client-cpus", help="CPU list for this client process, e.g. 1")
    args = parser.parse_args()
    if args.client_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    torch.set_num_threads(1)
    env = {**environment(), "server_threads": args.threads, "server_cpus": args.server_cpus or "inherited",
           "client_cpus": args.client_cpus or "inherited", "cpus_available": sorted(os.sched_getaffinity(0)),
           "client": "aiohttp, same machine"}
    print(json.dumps({"environment": env}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run.resolve() if args.run else default_run(Path(tmp))  # the server serves its parent
        rows = asyncio.run(bench(args, run))
    keys = ("endpoint", "concurrency", "batching", "requests_per_s", "p50_ms", "p99_ms", "errors",
            "throughput_vs_unbatched", "server_requests_per_cpu_s")
    summary = {"summary": [{k: r[k] for k in keys} for r in rows]}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
