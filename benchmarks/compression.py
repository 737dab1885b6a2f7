"""Rate-distortion of vaekit's learned codec against JPEG and WebP (and AVIF), from real file sizes.

For each dataset's TEST set (MNIST, Fashion-MNIST, Frey faces, Olivetti faces):

- vaekit: a ladder of ``--lambdas`` with the ``--codec-set`` settings, or of ``--rung``s each
  with its own settings (e.g. dense latents for the low rates, a latent grid for the high
  ones), one codec each, trained through the ordinary ``Trainer`` on the training split
  (``--epochs``, raised to ``--min-steps`` optimizer steps for small sets; ``--limit``;
  cached under ``--runs`` and reused). Its bits per pixel are counted from ``.vkc`` bytes,
  headers included, two ways: one file per image (``per_image``) and one file holding the
  whole test set (``one_file``). BD-rates use the rungs no other rung beats in both bits
  and PSNR (the ones a user would pick); every rung's point is in ``codec_points``.
- JPEG / WebP (and AVIF with ``--codecs``) through Pillow at a sweep of qualities, as one
  file per image and as tiled sheets (``--sheet`` x ``--sheet`` images per file, headers
  amortised: what a careful user would store), greyscale 8-bit.
- Distortion: PSNR of the whole test set (10 log10(1 / MSE over all pixels), values in
  [0, 1]; the codec's reconstruction rounded to 8 bits, as its PNG output is) and MS-SSIM
  (pytorch-msssim; 3 scales with a 3x3 window, since 28x28 images are too small for the
  standard 5 scales of 11x11: Wang et al. 2003 with the first three scale weights).
- BD-rate (Bjontegaard 2001): log-rate as a PCHIP function of PSNR for each curve, the
  mean difference over the overlapping PSNR range, as a fraction of bits (negative: vaekit
  needs fewer bits at equal PSNR). ``null`` when the curves do not overlap.
- Throughput of 28x28 images (encode + decode, images/s, one file per image and one file
  for all), with Pillow's JPEG encode + decode of the same images in the same run as the
  reference ratio: each rung's in its point, the slowest rung's in ``throughput``.

One JSON line per dataset (``dataset``, ``bd_rate_vs_jpeg``, ``bd_rate_vs_webp``,
``bd_rate_vs_best_sheet``, the curves, throughput, environment), then the lossless line
of ``benchmarks/compression_lossless.py`` when that script exists (``--skip-lossless``).

    VAEKIT_DATA_DIR=../shared/data taskset -c 1 python benchmarks/compression.py --threads 1 \\
        --datasets mnist --epochs 1 --limit 20000 --lambdas 0.001,0.004,0.016 --plot docs/images/rd_mnist.png
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import environment  # benchmarks/ is on sys.path when a script here runs

DATASETS = ("mnist", "fashion-mnist", "frey-faces", "olivetti-faces")
QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
PIL_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}


# -- distortion -------------------------------------------------------------------------------

def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR of a whole set: 10 log10(1 / MSE over all pixels), values in [0, 1]."""
    mse = float((x.double() - y.double()).pow(2).mean())
    return 100.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean MS-SSIM over images (Wang, Simoncelli & Bovik 2003), 3 scales with a 3x3 Gaussian
    window (sigma 1.5) and the paper's first three scale weights, renormalised: pytorch-msssim's
    ``ms_ssim`` insists on 4 downsamplings (images over 32 px with this window), which 28x20
    and 28x28 images are not. Its per-scale ``_ssim`` (contrast-structure and SSIM maps) is
    used as is; scales are 2x2 average pools, as in the paper."""
    import torch.nn.functional as F
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    weights = torch.tensor([0.0448, 0.2856, 0.3001], dtype=torch.float64)
    weights = weights / weights.sum()
    win = _fspecial_gauss_1d(3, 1.5).repeat(x.shape[1], 1, 1, 1)
    total = 0.0
    for i in range(0, len(x), 1000):
        a, b = x[i:i + 1000].double(), y[i:i + 1000].double()
        factors = []
        for level in range(len(weights)):
            ssim_map, cs = _ssim(a, b, data_range=1.0, win=win.double(), size_average=False)
            factors.append(torch.relu(cs if level < len(weights) - 1 else ssim_map).mean(1))
            a, b = F.avg_pool2d(a, 2, ceil_mode=True), F.avg_pool2d(b, 2, ceil_mode=True)
        stacked = torch.stack(factors, dim=-1)  # (B, scales)
        total += float((stacked ** weights).prod(-1).sum())
    return total / len(x)


# -- the learned codec --------------------------------------------------------------------------

def codec_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``vaekit train --set`` rules) as CodecConfig fields, with the
    training settings among them (``lr=...``) under ``"train"``."""
    from vaekit.training.settings import parse_assignments

    sections = parse_assignments(items, flag="--codec-set")
    if sections.get("data"):
        names = ", ".join(sorted(sections["data"]))
        raise SystemExit(f"error: --codec-set / --rung take codec and training settings, not data settings ({names})")
    return {**sections.get("model", {}), **({"train": sections["train"]} if sections.get("train") else {})}


def training_epochs(n_train: int, args: argparse.Namespace, epochs: int | None = None) -> int:
    """``epochs`` (a rung's own) or ``--epochs``, raised for a small training set until it gets
    ``--min-steps`` optimizer steps: 324 Olivetti faces make 6 batches an epoch, 54,000 MNIST
    digits 844."""
    from vaekit.training.config import TrainConfig

    steps_per_epoch = math.ceil(n_train / TrainConfig.batch_size)
    return max(epochs or args.epochs, math.ceil(args.min_steps / steps_per_epoch))


def ladder(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The codec settings of each rung of the ladder, ``lmbda`` included: one per ``--rung``
    (on top of ``--codec-set``), else one per ``--lambdas`` value with ``--codec-set``."""
    if not args.rung:
        return [{**codec_overrides(args.codec_set), "lmbda": float(v)} for v in args.lambdas.split(",")]
    rungs = [codec_overrides(args.codec_set + rung.split()) for rung in args.rung]
    for rung, text in zip(rungs, args.rung, strict=True):
        if "lmbda" not in rung:
            raise SystemExit(f"error: --rung {text!r}: give its lmbda=VALUE")
    return rungs


def trained_codec(name: str, rung: dict[str, Any], args: argparse.Namespace, data: Any
                  ) -> tuple[Any, int, float | None]:
    """The codec for (dataset, rung), its epochs and its training seconds: loaded from
    ``--runs`` if trained before (seconds ``None`` where that run did not record them), else
    trained now."""
    from vaekit import load
    from vaekit.atomic import atomic_write_text
    from vaekit.models.codec import Codec, CodecConfig
    from vaekit.training.trainer import TrainConfig, Trainer

    overrides = {k: v for k, v in rung.items() if k not in ("lmbda", "train")}
    lmbda, training = float(rung["lmbda"]), dict(rung.get("train", {}))
    train = data.train if not args.limit else data.train[:args.limit]
    epochs = training_epochs(len(train), args, training.pop("epochs", None))
    tag = "".join(f"-{k}{v}" for k, v in sorted({**overrides, **training}.items()))
    out = Path(args.runs) / f"{name}-lmbda{lmbda:g}-e{epochs}-n{args.limit or 'all'}{tag}"
    if (out / "model.safetensors").is_file():
        record = out / "training.json"
        return load(out), epochs, json.loads(record.read_text())["seconds"] if record.is_file() else None
    torch.manual_seed(args.seed)
    model = Codec(CodecConfig(input_shape=tuple(data.info.shape), lmbda=lmbda, **overrides))
    from vaekit.data.bundle import Dataset

    bundle = Dataset(train=train, val=None, test=None, info=data.info)
    config = TrainConfig(epochs=epochs, seed=args.seed, device="cpu", **{**CodecConfig.train_defaults, **training})
    started = time.perf_counter()
    Trainer(model, config, None, progress=False).fit(bundle)
    seconds = time.perf_counter() - started
    model.eval()
    model.save(out)
    atomic_write_text(out / "training.json", json.dumps({"seconds": seconds, "epochs": epochs}))
    return model, epochs, seconds


def codec_point(model: Any, x: torch.Tensor) -> dict[str, Any]:
    from vaekit.compression import compress, compress_each, decompress

    pixels = x.numel()
    per_image = compress_each(model, x)
    one_file = compress(model, x)
    recon = decompress(model, one_file)
    recon8 = (recon * 255).round() / 255  # what the PNG a user gets holds
    return {"lmbda": model.config.lmbda, "bpp_per_image": 8 * sum(map(len, per_image)) / pixels,
            "bpp_one_file": 8 * len(one_file) / pixels,
            "bpp_estimate": float(model.rate_bits(x).sum()) / pixels,
            "psnr": psnr(recon8, x), "ms_ssim": ms_ssim(recon8, x)}


# -- Pillow codecs ------------------------------------------------------------------------------

def _to_u8(x: torch.Tensor) -> np.ndarray:
    return (x * 255).round().to(torch.uint8).numpy()


def pil_round_trip(array: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array, mode="L").save(buf, format=PIL_FORMATS[fmt], quality=quality)
    size = buf.tell()
    buf.seek(0)
    with Image.open(buf) as im:
        return size, np.asarray(im.convert("L"))


def pil_per_image(x: torch.Tensor, fmt: str, quality: int) -> dict[str, Any]:
    images = _to_u8(x[:, 0])
    total, out = 0, np.empty_like(images)
    for i, a in enumerate(images):
        size, out[i] = pil_round_trip(a, fmt, quality)
        total += size
    recon = torch.from_numpy(out).float().unsqueeze(1) / 255
    return {"quality": quality, "bpp": 8 * total / x.numel(), "psnr": psnr(recon, x), "ms_ssim": ms_ssim(recon, x)}


def sheets(x: torch.Tensor, side: int) -> list[tuple[np.ndarray, int]]:
    """Tiles of ``side`` x ``side`` images (the last sheet has fewer rows, its last row padded
    with black), with the number of real images on each."""
    images = _to_u8(x[:, 0])
    _, h, w = images.shape
    out = []
    for start in range(0, len(images), side * side):
        chunk = images[start:start + side * side]
        rows = math.ceil(len(chunk) / side)
        sheet = np.zeros((rows * h, side * w), dtype=np.uint8)
        for k, a in enumerate(chunk):
            r, c = divmod(k, side)
            sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = a
        out.append((sheet, len(chunk)))
    return out


def pil_sheets(x: torch.Tensor, fmt: str, quality: int, side: int) -> dict[str, Any]:
    _, _, h, w = x.shape
    total, tiles = 0, []
    for sheet, count in sheets(x, side):
        size, decoded = pil_round_trip(sheet, fmt, quality)
        total += size
        for k in range(count):
            r, c = divmod(k, side)
            tiles.append(decoded[r * h:(r + 1) * h, c * w:(c + 1) * w])
    recon = torch.from_numpy(np.stack(tiles)).float().unsqueeze(1) / 255
    return {"quality": quality, "bpp": 8 * total / x.numel(), "psnr": psnr(recon, x), "ms_ssim": ms_ssim(recon, x)}


# -- BD-rate -----------------------------------------------------------------------------------

def bd_rate(test: list[tuple[float, float]], reference: list[tuple[float, float]]) -> float | None:
    """Bjontegaard delta rate of ``test`` against ``reference``, curves of (bpp, PSNR): the mean
    of log(rate) difference over the overlapping PSNR range (PCHIP fits), as a fraction
    (``exp(mean) - 1``; -0.5 = half the bits). ``None`` without a PSNR overlap."""
    from scipy.interpolate import PchipInterpolator

    def curve(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
        pts = sorted({(round(d, 6), math.log(r)) for r, d in points if r > 0 and d < 99})
        d = np.array([p[0] for p in pts])
        lr = np.array([p[1] for p in pts])
        keep = np.concatenate([[True], np.diff(d) > 1e-6])  # strictly increasing PSNR for the fit
        return d[keep], lr[keep]

    d1, r1 = curve(test)
    d2, r2 = curve(reference)
    if len(d1) < 2 or len(d2) < 2:
        return None
    lo, hi = max(d1.min(), d2.min()), min(d1.max(), d2.max())
    if hi <= lo:
        return None
    f1, f2 = PchipInterpolator(d1, r1), PchipInterpolator(d2, r2)
    mean_diff = (f1.integrate(lo, hi) - f2.integrate(lo, hi)) / (hi - lo)
    return float(math.exp(mean_diff) - 1)


def _range(points: list[tuple[float, float]]) -> list[float]:
    """[min, max] PSNR of a curve: BD-rate is ``null`` where two curves' ranges do not overlap."""
    return [round(min(d for _, d in points), 2), round(max(d for _, d in points), 2)]


def _points(sweep: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(bpp, PSNR) of a Pillow codec's sweep, keeping the points no other point beats in both."""
    return _monotone([(p["bpp"], p["psnr"]) for p in sweep])


def _monotone(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (bpp, PSNR) points no other point beats in both: fewer bits and more PSNR."""
    pts = sorted(points)
    out: list[tuple[float, float]] = []
    for r, d in pts:
        if not out or d > out[-1][1]:
            out.append((r, d))
    return out


# -- throughput --------------------------------------------------------------------------------

def throughput(model: Any, x: torch.Tensor) -> dict[str, float]:
    """Encode + decode images/s, per-image files and one file, against Pillow JPEG (q 75)."""
    from vaekit.compression import compress, compress_each, decompress, decompress_many

    n = len(x)
    t = time.perf_counter()
    decompress_many(model, compress_each(model, x))
    per_image = n / (time.perf_counter() - t)
    t = time.perf_counter()
    decompress(model, compress(model, x))
    one_file = n / (time.perf_counter() - t)
    images = _to_u8(x[:, 0])
    t = time.perf_counter()
    for a in images:
        pil_round_trip(a, "jpeg", 75)
    jpeg = n / (time.perf_counter() - t)
    return {"images_per_s_per_image_files": per_image, "images_per_s_one_file": one_file,
            "jpeg_images_per_s": jpeg, "per_image_vs_jpeg": per_image / jpeg, "threads": torch.get_num_threads()}


# -- the run -----------------------------------------------------------------------------------

def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import vaekit.data as vdata

    data = vdata.load(name)
    x = data.test if not args.test_limit else data.test[:args.test_limit]
    x = (x * 255).round() / 255
    codec_points = []
    for rung in ladder(args):
        model, epochs, spent = trained_codec(name, rung, args, data)
        point = {"settings": rung, "epochs": epochs, "training_seconds": spent, **codec_point(model, x)}
        if tuple(x.shape[1:]) == (1, 28, 28):
            point["throughput"] = throughput(model, x[:args.throughput_images])
        codec_points.append(point)
    pil: dict[str, Any] = {}
    for fmt in args.codecs:
        pil[fmt] = [pil_per_image(x, fmt, q) for q in args.qualities]
        pil[f"{fmt}_sheet"] = [pil_sheets(x, fmt, q, args.sheet) for q in args.qualities]
    # the rungs a user would pick: those no other rung beats in both bits and PSNR
    ours_per_image = _monotone([(p["bpp_per_image"], p["psnr"]) for p in codec_points])
    ours_one_file = _monotone([(p["bpp_one_file"], p["psnr"]) for p in codec_points])
    line: dict[str, Any] = {"dataset": name, "test_images": len(x), "image_shape": list(x.shape[1:])}
    for fmt in args.codecs:
        line[f"bd_rate_vs_{fmt}"] = bd_rate(ours_per_image, _points(pil[fmt]))
        line[f"bd_rate_one_file_vs_{fmt}_sheet"] = bd_rate(ours_one_file, _points(pil[f"{fmt}_sheet"]))
    # the better sheet codec: the lower envelope of every sheet codec's points
    best_sheet = _points([p for fmt in args.codecs for p in pil[f"{fmt}_sheet"]])
    line["bd_rate_vs_best_sheet"] = bd_rate(ours_one_file, best_sheet)
    line["bd_rate_per_image_files_vs_best_sheet"] = bd_rate(ours_per_image, best_sheet)
    line["psnr_ranges"] = {"vaekit": _range(ours_per_image),
                           **{k: _range([(p["bpp"], p["psnr"]) for p in v]) for k, v in pil.items()}}
    line["codec_points"] = codec_points
    line["pillow"] = pil
    line["training"] = {"limit": args.limit, "seed": args.seed}  # each rung's epochs are in its point
    timed = [p["throughput"] for p in codec_points if "throughput" in p]
    if timed:  # the slowest rung's: what a user's ladder guarantees
        line["throughput"] = min(timed, key=lambda t: t["images_per_s_per_image_files"])
    line.update(environment())
    if args.plot:
        plot(line, Path(str(args.plot).replace("{dataset}", name)), args.codecs)
    return line


def plot(line: dict[str, Any], path: Path, codecs: list[str]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(6, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ours = line["codec_points"]
    for key, style, label in (("bpp_per_image", "-", "one file per image"), ("bpp_one_file", "--", "one file for all")):
        every = [(p[key], p["psnr"]) for p in ours]
        best = _monotone(every)  # the line joins the rungs a user would pick; dominated ones are markers only
        ax.plot(*zip(*best, strict=True), "o" + style, color="C3", label=f"vaekit codec, {label}")
        ax.plot(*zip(*every, strict=True), "o", color="C3", mfc="none")
    for i, fmt in enumerate(codecs):
        for suffix, style in (("", "s-"), ("_sheet", "s--")):
            pts = line["pillow"][fmt + suffix]
            ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], style, color=f"C{i}", markersize=3,
                    label=f"{fmt.upper()}{', 10x10 sheets' if suffix else ', one file per image'}")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # 0.1, 0.2, 0.5, 1, 2, 5 bpp
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())  # the default labels at 2x, 3x ... overlap
    ax.set_xlabel("bits per pixel (file sizes, headers included)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{line['dataset']} test set ({line['test_images']} images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--lambdas", default="0.0005,0.001,0.002,0.004,0.008,0.016")
    parser.add_argument("--rung", action="append", default=[], metavar="'lmbda=L KEY=VALUE ...'",
                        help="one codec of the ladder with its own settings (repeatable; replaces --lambdas)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--min-steps", type=int, default=0,
                        help="optimizer steps a small training set gets at least (raises its epochs)")
    parser.add_argument("--limit", type=int, default=0, help="training examples (0: all)")
    parser.add_argument("--test-limit", type=int, default=0, help="test images (0: all)")
    parser.add_argument("--codecs", default="jpeg,webp", help="of jpeg, webp, avif")
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    parser.add_argument("--sheet", type=int, default=10, help="images per sheet side")
    parser.add_argument("--throughput-images", type=int, default=2000)
    parser.add_argument("--runs", default="runs/compression-bench", help="trained codecs are cached here")
    parser.add_argument("--codec-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a codec or training setting, e.g. dense=true latent_channels=32 lr=1e-3 (repeatable)")
    parser.add_argument("--plot", default="", help="PNG path; {dataset} is replaced by the dataset name")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lossless", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.qualities = [int(v) for v in args.qualities.split(",")]
    args.codecs = [c for c in args.codecs.split(",") if c]
    for name in args.datasets.split(","):
        print(json.dumps(run_dataset(name, args)), flush=True)
    script = Path(__file__).with_name("compression_lossless.py")
    if not args.skip_lossless and script.is_file():
        spec = importlib.util.spec_from_file_location("compression_lossless", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "main"):
            module.main([])


if __name__ == "__main__":
    main(sys.argv[1:])
