"""Build the pretrained models that ship inside vaekit (``src/vaekit/zoo``) from the verified
local datasets, and record each file's sha256 and the test figures in ``zoo/registry.json``.

    VAEKIT_DATA_DIR=../shared/data taskset -c 1 python benchmarks/build_zoo.py mnist-vae mnist-cvae

Each model is one run of ``vaekit.train`` (seed 0, one thread: the same files on the same
machine), shared with ``vaekit.hub.save_pretrained`` (config.json, model.safetensors,
summary.json, pictures, a model card). Float32 weights; an MLP with one hidden layer of 256
keeps each model under 2 MB.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

import torch

import vaekit
from vaekit import hub
from vaekit.atomic import building, staging_directory
from vaekit.compression import compress, decompress
from vaekit.serialization import read_json, write_json
from vaekit.sharing import ZOO, ZOO_REGISTRY, file_sha256, zoo_registry

#: name -> (what it is, data, model options, training settings)
ZOO_MODELS = {
    "mnist-vae": ("A VAE of MNIST digits (MLP, 16 latent dimensions)", "mnist",
                  {"model": "vae", "latent_dim": 16, "hidden": [256]}, {"epochs": 20, "seed": 0}),
    "mnist-cvae": ("A conditional VAE of MNIST digits: draw any digit (MLP, 16 latent dimensions)", "mnist",
                   {"model": "cvae", "latent_dim": 16, "hidden": [256]}, {"epochs": 20, "seed": 0}),
    "mnist-codec": ("A learned lossy codec of MNIST digits (dense latent, lambda 0.003): "
                    "vaekit compress pretrained:mnist-codec digit.png", "mnist",
                    {"model": "codec", "lmbda": 0.003, "dense": True, "latent_channels": 128},
                    {"epochs": 24, "lr": 0.003, "seed": 0}),
    "fashion-mnist-vae": ("A VAE of Fashion-MNIST clothes (MLP, 16 latent dimensions)", "fashion-mnist",
                          {"model": "vae", "latent_dim": 16, "hidden": [256]}, {"epochs": 20, "seed": 0}),
}


def build(name: str) -> dict:
    _, data, model, train = ZOO_MODELS[name]
    target = ZOO / name
    with tempfile.TemporaryDirectory() as tmp:
        run = vaekit.train(data, model, train, Path(tmp) / name, progress=False)
        # save_pretrained never writes inside the zoo: share outside it, then copy the complete
        # folder into a staging directory beside the old model and swap it in (atomic.building)
        shared = hub.save_pretrained(run, Path(tmp) / "shared", command=f"python benchmarks/build_zoo.py {name}")
        with building(staging_directory(target), target) as staged:
            shutil.copytree(shared, staged, dirs_exist_ok=True)
    return entry(name, target)


def entry(name: str, target: Path) -> dict:
    """The registry entry of a built model: its files' sha256 and size, its test figures (and,
    for a codec, the bits per pixel and PSNR of its .vkc files on the whole test set)."""
    about, data, model, _ = ZOO_MODELS[name]
    files = sorted(p.name for p in target.iterdir())
    test = read_json(target / "summary.json")["test"]
    figures = {"description": about, "data": data, "family": model["model"],
               "bytes": sum((target / f).stat().st_size for f in files),
               "test": {k: round(test[k], 3) for k in ("elbo", "recon", "kl")},
               "sha256": {f: file_sha256(target / f) for f in files}}
    loaded = vaekit.open_run(target)
    if loaded.model.entropy_coded:
        figures["compression"] = codec_figures(loaded)
    return figures


def codec_figures(run) -> dict:
    """Bits per pixel (one .vkc file per test image, headers included) and PSNR over the test set."""
    x = run.load_data().test
    blobs = [compress(run.model, x[i:i + 1]) for i in range(len(x))]
    decoded = torch.cat([decompress(run.model, b) for b in blobs])
    mse = float(((decoded - x) ** 2).mean())
    return {"test_images": len(x), "bpp": round(sum(len(b) for b in blobs) * 8 / x.numel(), 3),
            "psnr_db": round(10 * math.log10(1 / mse), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", choices=sorted(ZOO_MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--registry-only", action="store_true",
                        help="re-record the registry entries of models already built (no training)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.names:
        recorded = entry(name, ZOO / name) if args.registry_only else build(name)
        registry = zoo_registry()
        registry[name] = recorded
        write_json(ZOO_REGISTRY, dict(sorted(registry.items())))
        print(f"{name}: test -ELBO {recorded['test']['elbo']:.2f} nats, {recorded['bytes'] / 1e6:.2f} MB"
              + (f", {recorded['compression']}" if "compression" in recorded else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
