"""The latent commands end to end on tiny digits runs: the files they write, what those
files show, and their one-line errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit import latent, open_run
from vaekit.cli import main
from vaekit.latent.commands import write_arithmetic

QUICK = ["--epochs", "3", "--hidden", "32", "--limit", "300", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 4-D digits run, a 2-D digits run and a 2-D table run."""
    root = tmp_path_factory.mktemp("cli-latent")
    rng = np.random.default_rng(0)
    t = rng.normal(size=(300, 1))
    table = root / "table.csv"
    table.write_text("a,b,c\n" + "\n".join(",".join(f"{v:.4f}" for v in row)
                                           for row in np.hstack([t, 2 * t, rng.normal(size=(300, 1))])) + "\n")
    assert main(["train", "digits", *QUICK, "--latent-dim", "4", "--out", str(root / "d4")]) == 0
    assert main(["train", "digits", *QUICK, "--latent-dim", "2", "--out", str(root / "d2")]) == 0
    assert main(["train", str(table), "--epochs", "2", "--latent-dim", "2", "--hidden", "16", "--quiet",
                 "--out", str(root / "table")]) == 0
    return {name: root / name for name in ("d4", "d2", "table")}


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def test_sample_from_the_gmm_fits_and_saves_it_and_binarize_gives_black_and_white(runs, tmp_path, capsys):
    code, out, _ = cli(capsys, "sample", runs["d4"], "-n", "16", "--sampler", "gmm", "--components", "3",
                       "-o", tmp_path / "gmm.png")
    assert code == 0 and f"wrote {tmp_path / 'gmm.png'}" in out
    assert latent.GMMSampler.load(runs["d4"] / latent.GMM_FILE).n_components == 3
    assert cli(capsys, "sample", runs["d4"], "-n", "16", "--binarize", "-o", tmp_path / "bin.png")[0] == 0
    assert set(np.unique(png(tmp_path / "bin.png"))) <= {0, 255}
    code, _, err = cli(capsys, "sample", runs["d4"], "--components", "3")
    assert code == 2 and "--components applies to --sampler gmm only" in err


def test_sample_gmm_on_a_table_run_writes_csv_and_binarize_is_refused(runs, tmp_path, capsys):
    assert cli(capsys, "sample", runs["table"], "-n", "5", "--sampler", "gmm", "-o", tmp_path / "s.csv")[0] == 0
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "a,b,c"
    code, _, err = cli(capsys, "sample", runs["table"], "--binarize", "-o", tmp_path / "b.csv")
    assert code == 2 and "binarize needs a Bernoulli decoder" in err


def test_interpolate_by_index_writes_a_strip_whose_ends_are_the_reconstructions_and_a_gif(runs, tmp_path, capsys):
    out = tmp_path / "interp.png"
    code, stdout, _ = cli(capsys, "interpolate", runs["d4"], "--from", "3", "--to", "17", "--steps", "6", "-o", out)
    assert code == 0 and f"wrote {out}" in stdout and f"wrote {out.with_suffix('.gif')}" in stdout
    strip = png(out)
    cell = 64  # 8x8 digits scaled 8x, 1-pixel borders scaled alike
    assert strip.shape == (8 * 10, 8 * (6 * 9 + 1))
    run = open_run(runs["d4"])
    x = run.load_data().test
    recon = run.model.reconstruct(x[[3, 17]])[:, 0]
    first = strip[8:8 + cell:8, 8:8 + cell:8] / 255.0  # one pixel per scaled cell
    last = strip[8:8 + cell:8, -(8 + cell):-8:8] / 255.0
    assert np.abs(first - recon[0].numpy()).max() < 1 / 255 + 1e-6
    assert np.abs(last - recon[1].numpy()).max() < 1 / 255 + 1e-6
    assert Image.open(out.with_suffix(".gif")).n_frames == 2 * 6 - 2  # forward and back


def test_interpolate_between_classes_and_between_image_files(runs, tmp_path, capsys):
    assert cli(capsys, "interpolate", runs["d4"], "--from-class", "3", "--to-class", "8", "-o",
               tmp_path / "c.png")[0] == 0
    assert Image.open(tmp_path / "c.gif").n_frames == 2 * 10 - 2  # default 10 steps, forward and back
    x = open_run(runs["d4"]).load_data().test
    for i, name in ((0, "a.png"), (1, "b.png")):
        Image.fromarray((x[i, 0].numpy() * 255).round().astype(np.uint8)).save(tmp_path / name)
    assert cli(capsys, "interpolate", runs["d4"], "--from", tmp_path / "a.png", "--to", tmp_path / "b.png",
               "--method", "lerp", "-o", tmp_path / "f.png")[0] == 0
    assert (tmp_path / "f.gif").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "3"], "give --from and --to"),
    (["--from", "3", "--to", "4", "--from-class", "1", "--to-class", "2"], "give --from and --to"),
    (["--from", "3", "--to", "99999"], "--to: index 99999 is out of range for the test split (0..359)"),
    (["--from", "no-such.png", "--to", "1"], "--from: 'no-such.png' is neither an index nor an image file"),
    (["--from-class", "3", "--to-class", "11"], "--to-class: class 11 does not occur"),
    (["--from", "1", "--to", "2", "--method", "cubic"], "method: expected slerp or lerp"),
])
def test_interpolate_errors(runs, capsys, args, message):
    code, _, err = cli(capsys, "interpolate", runs["d4"], *args)
    assert code == 2 and message in err


def test_arithmetic_saves_a_class_vector_reuses_it_and_names_the_saved_ones(runs, tmp_path, capsys):
    code, out, _ = cli(capsys, "arithmetic", runs["d4"], "--class", "1", "--alpha", "-1,0,1", "-n", "3",
                       "-o", tmp_path / "a.png")
    assert code == 0 and "saved vector 'class-1'" in out
    assert latent.load_vector(runs["d4"], "class-1").shape == (4,)
    assert Image.open(tmp_path / "a.png").size[0] > 200
    assert cli(capsys, "arithmetic", runs["d4"], "--vector", "class-1", "-o", tmp_path / "b.png")[0] == 0
    code, _, err = cli(capsys, "arithmetic", runs["d4"], "--vector", "smile")
    assert code == 2 and "no attribute vector 'smile'" in err and "saved: class-1" in err


def test_arithmetic_from_two_folders_and_an_analogy(runs, tmp_path, capsys):
    x = open_run(runs["d4"]).load_data().test
    for folder, images in (("ones", x[:5]), ("others", x[5:10])):
        (tmp_path / folder).mkdir()
        for i, img in enumerate(images):
            Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)).save(tmp_path / folder / f"{i}.png")
    code, out, _ = cli(capsys, "arithmetic", runs["d4"], "--with", tmp_path / "ones", "--without",
                       tmp_path / "others", "-o", tmp_path / "w.png")
    assert code == 0 and "saved vector 'with-ones'" in out
    run = open_run(runs["d4"])
    expected = latent.attribute_vector(run.model, x[:5], x[5:10])  # the same images, before PNG quantization
    saved = latent.load_vector(runs["d4"], "with-ones")
    assert torch.nn.functional.cosine_similarity(saved, expected, dim=0) > 0.99
    assert cli(capsys, "arithmetic", runs["d4"], "--analogy", "1,2,3", "-o", tmp_path / "an.png")[0] == 0
    assert (tmp_path / "an.png").is_file()


@pytest.mark.parametrize(("args", "message"), [
    ([], "give exactly one of --class K"),
    (["--class", "1", "--vector", "x"], "give exactly one of --class K"),
    (["--with", "somewhere"], "--with DIR and --without DIR go together"),
    (["--class", "1", "--alpha", "a,b"], "--alpha: expected comma-separated numbers"),
    (["--analogy", "1,2"], "--analogy: expected 3 comma-separated indices"),
    (["--class", "seven"], "--class: unknown class 'seven' (expected an index or a name (0, 1, 2"),
])
def test_arithmetic_errors(runs, capsys, args, message):
    code, _, err = cli(capsys, "arithmetic", runs["d4"], *args)
    assert code == 2 and message in err


def save_pngs(folder, images) -> list:
    folder.mkdir(exist_ok=True)
    paths = [folder / f"{i}.png" for i in range(len(images))]
    for path, img in zip(paths, images, strict=True):
        Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)).save(path)
    return paths


def test_arithmetic_applies_a_saved_vector_to_image_files_and_a_folder(runs, tmp_path, capsys):
    run = open_run(runs["d4"])
    x = run.load_data().test
    code, out, _ = cli(capsys, "arithmetic", runs["d4"], "--class", "2", "--name", "two", "-n", "2",
                       "-o", tmp_path / "made.png")
    assert code == 0 and "saved vector 'two'" in out
    a, b = save_pngs(tmp_path / "mine", x[:2])
    folder = tmp_path / "photos"
    save_pngs(folder, x[2:5])
    code, out, _ = cli(capsys, "arithmetic", runs["d4"], "--vector", "two", "--input", a, "--input", b,
                       "--alpha", "-1,0,1", "-o", tmp_path / "files.png")
    assert code == 0 and f"wrote {tmp_path / 'files.png'}" in out and "saved vector" not in out
    code, out, _ = cli(capsys, "arithmetic", runs["d4"], "--vector", "two", "--input", f"{folder}/",
                       "--alpha", "-1,0,1", "-o", tmp_path / "folder.png")
    assert code == 0 and f"wrote {tmp_path / 'folder.png'}" in out
    assert Image.open(tmp_path / "folder.png").size[1] > Image.open(tmp_path / "files.png").size[1]  # 3 rows > 2

    done = write_arithmetic(run, vector="two", images=[a, b], alphas=[-1, 0, 1], output=tmp_path / "py.png")
    assert done.paths == [tmp_path / "py.png"] and done.grid.shape == (2, 1 + 3, 1, 8, 8)  # input, then alphas
    shown = done.grid[:, 0]
    assert (shown - x[:2]).abs().max() <= 0.5 / 255 + 1e-6  # the files, as the run reads them
    assert torch.allclose(done.grid[:, 2], run.model.reconstruct(shown), atol=1e-5)  # alpha 0: the reconstruction
    moved = latent.apply_vector(run.model, shown, latent.load_vector(run, "two"), [-1, 0, 1])
    assert torch.allclose(done.grid[:, 1:], moved, atol=1e-5)
    from_folder = write_arithmetic(run, vector="two", images=folder, alphas="-1,0,1", output=tmp_path / "pf.png")
    assert from_folder.grid.shape == (3, 4, 1, 8, 8)
    assert (from_folder.grid[:, 0] - x[2:5]).abs().max() <= 0.5 / 255 + 1e-6  # sorted file order


def test_arithmetic_on_files_builds_the_vector_in_the_same_command(runs, tmp_path, capsys):
    x = open_run(runs["d4"]).load_data().test
    a, = save_pngs(tmp_path / "mine", x[:1])
    code, out, _ = cli(capsys, "arithmetic", runs["d4"], "--class", "3", "--input", a, "-o", tmp_path / "c.png")
    assert code == 0 and "saved vector 'class-3'" in out and (tmp_path / "c.png").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "{tmp}/missing.png"], "--input: '{tmp}/missing.png' does not exist"),
    (["--input", "{tmp}/notes.txt"], "--input: '{tmp}/notes.txt' is not an image file"),
    (["--input", "{tmp}/broken.png"], "cannot read image '{tmp}/broken.png'"),
    (["--input", "{tmp}/empty"], "--input {tmp}/empty: no images found in '{tmp}/empty'"),
    (["--input", "{tmp}/notes.txt", "-n", "3"], "--input and -n/--split are alternatives"),
    (["--input", "{tmp}/notes.txt", "--split", "val"], "--input and -n/--split are alternatives"),
])
def test_arithmetic_input_errors_are_one_line_naming_the_file(runs, tmp_path, capsys, args, message):
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "arithmetic", runs["d4"], "--class", "1",
                       *[a.format(tmp=tmp_path) for a in args], "-o", tmp_path / "out.png")
    assert code == 2 and message.format(tmp=tmp_path) in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out.png").exists()


def test_arithmetic_refuses_image_files_for_a_conditional_run(tmp_path, capsys):
    assert main(["train", "digits", *QUICK, "--model", "cvae", "--latent-dim", "2",
                 "--out", str(tmp_path / "cvae")]) == 0
    x = open_run(tmp_path / "cvae").load_data().test
    a, = save_pngs(tmp_path / "mine", x[:1])
    code, _, err = cli(capsys, "arithmetic", tmp_path / "cvae", "--class", "1", "--input", a)
    assert code == 2 and "--input: image files have no class label" in err


def test_traverse_writes_rows_by_kl_and_lists_collapsed_dimensions(runs, tmp_path, capsys):
    code, out, _ = cli(capsys, "traverse", runs["d4"], "--dims", "3", "--steps", "5", "-o", tmp_path / "t.png")
    assert code == 0 and "collapsed dimensions (KL < 0.01 nats):" in out and "of 4" in out
    assert Image.open(tmp_path / "t.png").size[1] > 150
    code, _, err = cli(capsys, "traverse", runs["d4"], "--index", "1000")
    assert code == 2 and "--index: index 1000 is out of range" in err


def test_latent_map_and_the_manifold_of_a_two_dimensional_run(runs, tmp_path, capsys):
    code, out, _ = cli(capsys, "latent-map", runs["d4"], "--method", "pca", "-n", "100", "-o", tmp_path / "m4.png")
    assert code == 0 and f"wrote {tmp_path / 'm4.png'}" in out and not (tmp_path / "manifold.png").exists()
    code, out, _ = cli(capsys, "latent-map", runs["d2"], "-o", tmp_path / "m2.png")
    assert code == 0 and (tmp_path / "manifold.png").is_file()
    assert Image.open(tmp_path / "manifold.png").size[0] >= 512
    assert cli(capsys, "latent-map", runs["table"], "-o", tmp_path / "t.png")[0] == 0  # tables too


def test_default_outputs_take_names_no_file_in_the_run_has(runs, capsys):
    """A default output and the files written beside it get one new tag together; nothing in
    the run is replaced."""
    d2 = runs["d2"]
    (d2 / "manifold.png").write_bytes(b"the user's own file")
    (d2 / "interpolation.gif").write_bytes(b"another")
    try:
        code, out, _ = cli(capsys, "latent-map", d2, "--method", "pca", "-n", "50")
        assert code == 0 and f"wrote {d2 / 'latent_map-2.png'}" in out and f"wrote {d2 / 'manifold-2.png'}" in out
        assert not (d2 / "latent_map.png").exists()  # free itself, but its manifold's name was taken
        code, out, _ = cli(capsys, "interpolate", d2, "--from", "1", "--to", "2", "--steps", "3")
        assert code == 0 and (d2 / "interpolation-2.png").is_file() and (d2 / "interpolation-2.gif").is_file()
        assert (d2 / "manifold.png").read_bytes() == b"the user's own file"
        assert (d2 / "interpolation.gif").read_bytes() == b"another"
    finally:
        for name in ("manifold.png", "interpolation.gif", "latent_map-2.png", "manifold-2.png",
                     "interpolation-2.png", "interpolation-2.gif"):
            (d2 / name).unlink(missing_ok=True)


@pytest.mark.parametrize("command", [["interpolate", "--from", "1", "--to", "2"], ["arithmetic", "--class", "1"],
                                     ["traverse"]])
def test_image_commands_refuse_table_runs(runs, capsys, command):
    code, _, err = cli(capsys, command[0], runs["table"], *command[1:])
    assert code == 2 and f"vaekit {command[0]} needs an image run" in err


@pytest.mark.parametrize("command", ["interpolate", "arithmetic", "traverse", "latent-map", "sample"])
def test_every_latent_command_has_help_with_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_an_error_is_one_line_on_stderr_with_exit_2_from_the_real_command(runs):
    result = subprocess.run([sys.executable, "-m", "vaekit", "traverse", str(runs["table"])], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: vaekit traverse needs an image run")
