"""The command line: end to end on digits, and every bad input as one line with a non-zero exit."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vaekit.cli import main

QUICK = ["--epochs", "2", "--latent-dim", "3", "--hidden", "32", "--limit", "200", "--quiet"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m vaekit`` as a user would, capturing both streams."""
    return subprocess.run([sys.executable, "-m", "vaekit", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "digits"
    assert main(["train", "digits", *QUICK, "--out", str(out)]) == 0
    return out


def test_train_writes_a_complete_run_directory(digits_run):
    names = {p.name for p in digits_run.iterdir()}
    assert {"config.json", "model.safetensors", "checkpoint.pt", "metrics.jsonl", "summary.json",
            "reconstructions.png", "samples.png"} <= names
    config = json.loads((digits_run / "config.json").read_text())
    assert config["model"]["latent_dim"] == 3 and config["train"]["epochs"] == 2
    assert config["data"]["info"]["shape"] == [1, 8, 8]
    rows = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_sample_reconstruct_info(digits_run, tmp_path, capsys):
    from PIL import Image

    assert main(["sample", str(digits_run), "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] >= 256
    assert main(["reconstruct", str(digits_run), "-n", "8", "-o", str(tmp_path / "r.png")]) == 0
    assert "mean squared reconstruction error on 8 test examples" in capsys.readouterr().out
    assert main(["info", str(digits_run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["results"]["epochs_done"] == 2 and info["data"]["shape"] == [1, 8, 8]


def test_default_outputs_never_replace_a_file_in_the_run(digits_run, capsys):
    """Without -o, sample and reconstruct write beside the pictures training wrote, under new
    names; a file named with -o that exists is refused (exit 2) and left as it was."""
    own = {name: (digits_run / name).read_bytes() for name in ("samples.png", "reconstructions.png")}
    written = []
    try:
        for args, name in ((["sample", "--seed", "5"], "samples-2.png"), (["sample"], "samples-3.png"),
                           (["reconstruct", "-n", "8", "--split", "train"], "reconstructions-2.png")):
            assert main([args[0], str(digits_run), *args[1:]]) == 0
            written.append(digits_run / name)
            assert f"wrote {digits_run / name}" in capsys.readouterr().out
            assert written[-1].is_file()
        for command in ("sample", "reconstruct"):
            name = "samples.png" if command == "sample" else "reconstructions.png"
            assert main([command, str(digits_run), "-o", str(digits_run / name)]) == 2
            assert "already exists (use --overwrite to replace it)" in capsys.readouterr().err
        assert {name: (digits_run / name).read_bytes() for name in own} == own
    finally:
        for path in written:
            path.unlink(missing_ok=True)


def test_flags_override_the_config_file(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model:\n  latent_dim: 5\n  hidden: [16]\ntrain:\n  epochs: 1\n  lr: 0.002\ndata:\n  limit: 100\n")
    out = tmp_path / "run"
    assert main(["train", "digits", "--config", str(cfg), "--latent-dim", "2", "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["latent_dim"] == 2 and config["model"]["hidden"] == [16]
    assert config["train"]["lr"] == 0.002 and config["data"]["config"]["limit"] == 100


def test_toml_config_file_with_flat_keys(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('latent_dim = 2\nhidden = [8]\nepochs = 1\nlimit = 100\nsource = "digits"\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["latent_dim"] == 2


def test_set_reaches_any_field_between_the_file_and_the_flags(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model:\n  latent_dim: 5\n  hidden: [16]\ntrain:\n  epochs: 1\n")
    out = tmp_path / "run"
    assert main(["train", "digits", "--config", str(cfg), "--set", "hidden=[12, 6]", "--set", "train.lr=0.003",
                 "--set", "latent_dim=4", "--latent-dim", "2", "--set", "data.limit=100", "--quiet",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["hidden"] == [12, 6] and config["model"]["latent_dim"] == 2  # the flag wins
    assert config["train"]["lr"] == 0.003 and config["data"]["config"]["limit"] == 100


def test_exponent_numbers_are_numbers_in_files_and_flags(tmp_path):
    """PyYAML reads 1e-3 as a string; a user writing lr: 1e-3 means the number."""
    from vaekit.training.settings import parse_assignments, read_settings_file

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train:\n  lr: 1e-3\nweight_decay: 5E-4\nobjective: elbo\n")
    sections = read_settings_file(cfg)
    assert sections["train"] == {"lr": 0.001, "weight_decay": 0.0005, "objective": "elbo"}
    assert parse_assignments(["lr=1e-3", "train.beta=2e0", "hidden=[16]"]) == {
        "model": {"hidden": [16]}, "train": {"lr": 0.001, "beta": 2.0}, "data": {}}


@pytest.mark.parametrize(("item", "message"), [
    ("latent_dim", "--set 'latent_dim': expected KEY=VALUE"),
    ("optim.lr=0.1", "--set 'optim.lr=0.1': the section must be one of model, train, data"),
    ("decoder_width=3", "unknown field(s) ['decoder_width']"),
])
def test_a_bad_set_is_one_line(tmp_path, item, message):
    result = run_cli("train", "digits", "--set", item, "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_resume_flag_continues_a_run(digits_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    assert main(["train", "--resume", "--out", str(copy), "--epochs", "3", "--quiet"]) == 0
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]


@pytest.mark.parametrize(("args", "message"), [
    (["train", "no-such-set"], "unknown dataset"),
    (["train", "digits", "--arch", "rnn"], "arch: 'rnn' is not one of mlp, conv"),
    (["train", "digits", "--kl-anneal", "sigmoid"], "--kl-anneal: cannot read 'sigmoid'"),
    (["train", "digits", "--hidden", "a,b"], "--hidden: expected comma-separated integers"),
    (["train", "digits", "--epochs", "0"], "epochs: expected at least 1, got 0"),
    (["train", "digits", "--resume"], "no run to resume here"),
    (["train", "digits", "--config", "missing.yaml"], "missing.yaml: no such config file"),
    (["sample", "no/such/run"], "no/such/run: no such run directory"),
    (["train", "digits", "--color", "sepia"], "--color: expected auto, gray or rgb"),
])
def test_bad_input_is_one_line_on_stderr_with_exit_2_and_no_traceback(args, message, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path / "x")) if args[0] == "train" else run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "x").exists() or (args[:2] == ["train", "digits"] and "--resume" in args)


def test_existing_run_directory_is_refused_by_the_cli(digits_run):
    before = (digits_run / "model.safetensors").read_bytes()
    result = run_cli("train", "digits", *QUICK, "--out", str(digits_run))
    assert result.returncode == 2 and "already exists (use --overwrite" in result.stderr
    assert (digits_run / "model.safetensors").read_bytes() == before


def test_truncated_weights_give_one_line_error(digits_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2])
    result = run_cli("sample", str(copy))
    assert result.returncode == 2 and "cannot read weights (truncated" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["train", "sample", "reconstruct", "info"])
def test_every_command_has_help_with_an_example(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0 and "Example" in result.stdout


def test_a_csv_table_trains_with_a_gaussian_likelihood_and_samples_in_original_units(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    latent = rng.normal(size=(300, 1))
    table = np.hstack([1000 + 50 * latent, -3 + 0.1 * latent, rng.normal(size=(300, 1))])
    csv_path = tmp_path / "table.csv"
    lines = ["income,temperature,noise"] + [",".join(f"{v:.5f}" for v in row) for row in table]
    csv_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert main(["train", str(csv_path), "--epochs", "30", "--latent-dim", "2", "--hidden", "32",
                 "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["likelihood"] == "gaussian"
    assert config["data"]["standardizer"]["columns"] == ["income", "temperature", "noise"]
    assert main(["sample", str(out), "-n", "500", "-o", str(tmp_path / "s.csv")]) == 0
    header, *rows = (tmp_path / "s.csv").read_text().splitlines()
    assert header == "income,temperature,noise"
    samples = np.array([[float(v) for v in r.split(",")] for r in rows])
    assert abs(samples[:, 0].mean() - 1000) < 25 and abs(samples[:, 1].mean() + 3) < 0.05  # original units


def test_a_table_with_a_bad_cell_names_column_and_row(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("a,b\n1,2\n3,oops\n")
    result = run_cli("train", str(csv_path), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "column 'b', row 2" in result.stderr and "'oops' is not a number" in result.stderr
    assert not (tmp_path / "run").exists()


def test_an_unparsable_settings_file_is_named(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: [unclosed\n")
    result = run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "bad.yaml: cannot parse config" in result.stderr


def test_an_unknown_setting_in_a_file_is_named(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[train]\nepochz = 3\n")
    result = run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "unknown field(s) ['epochz']" in result.stderr


def test_ctrl_c_during_training_exits_130_and_the_run_resumes(tmp_path):
    """A real SIGINT to the real command: clean exit, a consistent run directory, then --resume."""
    import os
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "train", "digits", "--epochs", "100000", "--latent-dim",
                             "2", "--hidden", "16", "--limit", "100", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a background job (CI's, say) would hand it SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "resume with --resume" in stderr
    done = load_checkpoint_epoch(out)
    assert done >= 2 and len(metrics.read_text().splitlines()) == done
    assert main(["train", "--resume", "--out", str(out), "--epochs", str(done + 1), "--quiet"]) == 0
    assert len(metrics.read_text().splitlines()) == done + 1


def load_checkpoint_epoch(run_dir: Path) -> int:
    from vaekit.serialization import load_checkpoint

    return load_checkpoint(run_dir / "checkpoint.pt")["state"]["epoch"]


def test_a_truncated_checkpoint_is_refused_on_resume(digits_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    ckpt = copy / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    result = run_cli("train", "--resume", "--out", str(copy), "--epochs", "3")
    assert result.returncode == 2 and "checkpoint.pt: cannot read checkpoint (truncated" in result.stderr


def test_a_corrupt_config_json_is_named(digits_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    (copy / "config.json").write_text('{"model": ')
    result = run_cli("info", str(copy))
    assert result.returncode == 2 and "config.json: not valid JSON" in result.stderr


@pytest.mark.parametrize(("args", "named"), [(["train", "--no-such-flag"], "--no-such-flag"),
                                             (["frobnicate"], "'frobnicate'"), (["sample"], "'RUN'"),
                                             (["train", "digits", "--latent-dim", "x"], "'--latent-dim'")])
def test_usage_errors_are_one_line_naming_the_flag(args, named):
    result = run_cli(*args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert lines[0].endswith("--help')")  # where to read more


def test_a_group_without_a_command_prints_its_help():
    result = run_cli("anomaly")
    assert result.returncode == 2 and "Usage: vaekit anomaly" in result.stdout and result.stderr == ""
