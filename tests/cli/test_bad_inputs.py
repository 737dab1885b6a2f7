"""The catalogue of bad inputs: nothing a user has is ever lost, and every bad value
gets one clear line.

Each row runs one command that must be refused and asserts the three promises: exit status
2, exactly one ``error: ...`` line on stderr matching the row's pattern (no traceback), and
every file of the workspace byte-identical afterwards (nothing written, nothing removed).
Every bug of this kind found later gets its row here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaekit.cli import main
from vaekit.training.trainer import Trainer

TINY = ["--epochs", "2", "--latent-dim", "2", "--hidden", "16", "--limit", "200", "--quiet"]

#: (id, argv run in the workspace, pattern the one error line must match)
CASES: list[tuple[str, list[str], str]] = [
    # -- data loss: --overwrite replaces only a vaekit run or detector, never a user's folder
    ("train --out . --overwrite", ["train", "digits", "--out", ".", "--overwrite", *TINY],
     r"^\.: --overwrite never replaces the working directory"),
    ("train --out .. --overwrite", ["train", "digits", "--out", "..", "--overwrite", *TINY],
     r"^\.\.: --overwrite never replaces the working directory, a folder above it"),
    ("train --overwrite on a user's folder", ["train", "digits", "--out", "mine", "--overwrite", *TINY],
     r"^mine: not a vaekit run or detector \(no config\.json written by vaekit\)"),
    ("anomaly fit --overwrite on a user's folder", ["anomaly", "fit", "normal.csv", "--out", "mine", "--overwrite"],
     r"^mine: not a vaekit run or detector"),
    ("train --overwrite that fails keeps the old run",
     ["train", "digits", "--out", "run", "--overwrite", "--latent-dim", "100000000", "--quiet"],
     r"need about [\d.]+ [KMGT]B of memory, more than the [\d.]+ [KMGT]B available"),
    ("train onto an existing run", ["train", "digits", "--out", "run", *TINY],
     r"^run: run directory already exists \(use --overwrite to replace it or --resume"),
    # -- one rule for every writer: an existing file is replaced only with --overwrite
    ("reconstruct -o an input image", ["reconstruct", "run", "-o", "imgs/d1.png"],
     r"^imgs/d1\.png: already exists \(use --overwrite to replace it\)$"),
    ("sample -o an existing file", ["sample", "run", "-o", "imgs/d1.png"], r"^imgs/d1\.png: already exists"),
    ("interpolate -o an existing file", ["interpolate", "run", "--from", "0", "--to", "1", "-o", "imgs/d1.png"],
     r"^imgs/d1\.png: already exists"),
    ("interpolate -o whose .gif exists", ["interpolate", "run", "--from", "0", "--to", "1", "-o", "imgs/d2.png"],
     r"^imgs/d2\.gif: already exists"),
    ("traverse -o an existing file", ["traverse", "run", "-o", "imgs/d1.png"], r"^imgs/d1\.png: already exists"),
    ("latent-map -o an existing file", ["latent-map", "run", "-o", "imgs/d1.png"], r"^imgs/d1\.png: already exists"),
    ("arithmetic -o an existing file", ["arithmetic", "run", "--class", "1", "-o", "imgs/d1.png"],
     r"^imgs/d1\.png: already exists"),
    ("encode -o an existing file", ["encode", "run", "digits", "-o", "codes.csv"], r"^codes\.csv: already exists"),
    ("export -o an existing file", ["export", "run", "--format", "torchscript", "-o", "imgs/d1.png"],
     r"^imgs/d1\.png: already exists"),
    ("decode into a folder that is not empty", ["decode", "run", "codes.npy", "-o", "imgs"],
     r"^imgs: output folder already exists \(use --overwrite to add to it\)"),
    # -- a resume continues exactly or refuses, changing nothing
    ("resume a truncated checkpoint", ["train", "--resume", "--out", "run_trunc", "--epochs", "5", "--quiet"],
     r"^run_trunc/checkpoint\.pt: cannot read checkpoint \(truncated"),
    ("resume --epochs below the epochs done", ["train", "--resume", "--out", "run", "--epochs", "1", "--quiet"],
     r"^--epochs 1: the run in run has already done 2 epochs"),
    ("resume with a different --latent-dim", ["train", "--resume", "--out", "run", "--latent-dim", "3", "--quiet"],
     r"^model\.latent_dim 3: the run in run has 2, and a resumed run keeps its settings"),
    ("resume with a different --set", ["train", "--resume", "--out", "run", "--set", "train.lr=0.5", "--quiet"],
     r"^train\.lr 0\.5: the run in run has 0\.001"),
    ("resume a folder that is not a run", ["train", "--resume", "--out", "mine"], r"^mine: no run to resume here"),
    # -- wrong types and ranges: one line naming the file, flag or field and what was expected
    ("a settings file with a wrong type", ["train", "digits", "--config", "s.yaml", "--out", "new"],
     r"^s\.yaml: model\.latent_dim: expected an integer, got 'sixteen'$"),
    ("--set with a wrong type", ["train", "digits", "--set", "train.lr=abc", "--out", "new"],
     r"^--set train\.lr: expected a finite number, got 'abc'$"),
    ("--set with a number that is not finite", ["train", "digits", "--set", "beta=.nan", "--out", "new"],
     r"^--set train\.beta: expected a finite number, got nan$"),
    ("config.json with a wrong type", ["sample", "run_badcfg", "-o", "new.png"],
     r"^run_badcfg/config\.json: latent_dim: expected an integer, got 'sixteen'$"),
    ("sample --temperature nan", ["sample", "run", "--temperature", "nan", "-o", "new.png"],
     r"^temperature: expected a number above 0 and at most 100, got nan$"),
    ("sample --temperature -1", ["sample", "run", "--temperature", "-1", "-o", "new.png"],
     r"^temperature: expected a number above 0 and at most 100, got -1"),
    ("sample -n -1", ["sample", "run", "-n", "-1", "-o", "new.png"], r"^n: expected at least 1 sample, got -1$"),
    ("sample -n too large to fit", ["sample", "run", "-n", "100000000000", "-o", "new.png"],
     r"^sample: 100000000000 samples of 64 values need about [\d.]+ [KMGT]B of memory, more than"),
    ("train --latent-dim too large to fit", ["train", "digits", "--latent-dim", "100000000", "--out", "new"],
     r"^model 'vae' \([\d,]+ weights, latent_dim 100000000\): .* need about [\d.]+ [KMGT]B of memory"),
    ("serve --port 99999", ["serve", "run", "--port", "99999"],
     r"^--port: expected a TCP port from 1 to 65535, got 99999$"),
    ("export into a missing folder", ["export", "run", "-o", "/nonexistent-vaekit/dir/x.onnx"],
     r"^/nonexistent-vaekit/dir/x\.onnx: the folder /nonexistent-vaekit/dir does not exist"),
    ("interpolate --from a broken image names it", ["interpolate", "run", "--from", "bad.png", "--to", "0",
                                                    "-o", "new.png"], r"bad\.png"),
    ("anomaly fit on one row", ["anomaly", "fit", "one.csv", "--out", "newdet"],
     r"X: n_samples = 1; a detector needs at least 2 normal examples"),
    # -- cases that already passed before this catalogue, kept so they stay so
    ("unknown dataset", ["train", "no-such-set", "--out", "new"], r"unknown dataset"),
    ("no such run", ["sample", "no/such/run"], r"^no/such/run: no such run directory$"),
    ("--set without a value", ["train", "digits", "--set", "latent_dim", "--out", "new"],
     r"^--set 'latent_dim': expected KEY=VALUE"),
    ("--set of an unknown field", ["train", "digits", "--set", "decoder_width=3", "--out", "new"],
     r"unknown field\(s\) \['decoder_width'\]"),
    ("--epochs 0", ["train", "digits", "--epochs", "0", "--out", "new"], r"^epochs: expected at least 1, got 0$"),
    ("reconstruct a bad split", ["reconstruct", "run", "--split", "nope", "-o", "new.png"], r"nope"),
    ("truncated weights", ["sample", "run_trunc", "-o", "new.png"], r"model\.safetensors: cannot read weights"),
]


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) -> the sha256 of its bytes; folders as ``/``."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        found[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "/"
    return found


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A user's folder: a tiny digits run, a folder of their own files, images, tables, codes,
    and broken copies of the run (truncated checkpoint and weights, a config.json of a wrong type)."""
    root = tmp_path_factory.mktemp("bad_inputs") / "work"
    root.mkdir()
    assert main(["train", "digits", "--out", str(root / "run"), *TINY]) == 0
    (root / "mine").mkdir()
    (root / "mine" / "thesis.txt").write_text("another user's files: must survive every command\n")
    (root / "imgs").mkdir()
    for name in ("d1.png", "d2.gif"):
        Image.fromarray(np.full((8, 8), 200, np.uint8)).save(root / "imgs" / name)
    (root / "bad.png").write_text("not an image")
    rng = np.random.default_rng(0)
    np.savetxt(root / "normal.csv", rng.normal(size=(40, 3)), delimiter=",", header="a,b,c", comments="")
    np.savetxt(root / "one.csv", rng.normal(size=(1, 3)), delimiter=",", header="a,b,c", comments="")
    (root / "codes.csv").write_text("id,z0,z1\n0,0.1,0.2\n")
    np.save(root / "codes.npy", np.zeros((2, 2), np.float32))
    (root / "s.yaml").write_text('latent_dim: "sixteen"\n')
    shutil.copytree(root / "run", root / "run_trunc")
    for name in ("checkpoint.pt", "model.safetensors"):
        data = (root / "run_trunc" / name).read_bytes()
        (root / "run_trunc" / name).write_bytes(data[: len(data) // 2])
    shutil.copytree(root / "run", root / "run_badcfg")
    config = json.loads((root / "run_badcfg" / "config.json").read_text())
    config["model"]["latent_dim"] = "sixteen"
    (root / "run_badcfg" / "config.json").write_text(json.dumps(config))
    return root


@pytest.mark.parametrize(("argv", "pattern"), [pytest.param(a, p, id=i) for i, a, p in CASES])
def test_a_refused_command_says_one_line_and_changes_nothing(workspace, argv, pattern, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    above = _tree(workspace.parent)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0].removeprefix("error: ")), lines[0]
    assert "Traceback" not in err
    assert f"{tempfile.gettempdir()}/tmp" not in lines[0]  # a file the user never named
    assert _tree(workspace.parent) == above  # byte-identical: nothing written, replaced or removed
    assert not Path("/nonexistent-vaekit").exists()


def _run_copy(workspace: Path, tmp_path: Path) -> Path:
    shutil.copytree(workspace / "run", tmp_path / "run")
    return tmp_path / "run"


def test_overwrite_replaces_a_run_only_once_the_new_one_is_complete(workspace, tmp_path, monkeypatch):
    run = _run_copy(workspace, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "digits", "--out", "run", "--overwrite", *TINY, "--latent-dim", "3"]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["latent_dim"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging directory left behind


def _ctrl_c(self, *args, **kwargs):
    """In place of ``Trainer._end_epoch``: Ctrl-C at the end of the first epoch."""
    raise KeyboardInterrupt


def test_ctrl_c_during_an_overwrite_leaves_the_old_run_byte_identical(workspace, tmp_path, monkeypatch, capsys):
    run = _run_copy(workspace, tmp_path)
    before = _tree(tmp_path)
    monkeypatch.setattr(Trainer, "_end_epoch", _ctrl_c)
    assert main(["train", "digits", "--out", str(run), "--overwrite", *TINY]) == 130
    assert f"{run} is unchanged" in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_a_new_run_interrupted_by_ctrl_c_stays_resumable(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "_end_epoch", _ctrl_c)
    assert main(["train", "digits", "--out", str(tmp_path / "new"), *TINY]) == 130
    assert "resume with --resume" in capsys.readouterr().err
    assert (tmp_path / "new" / "config.json").is_file()


def test_overwrite_with_the_flag_replaces_an_existing_output_file(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "s.png"
    target.write_bytes(b"old")
    assert main(["sample", str(workspace / "run"), "-n", "4", "-o", "s.png", "--overwrite"]) == 0
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(tmp_path) == ["s.png"]
