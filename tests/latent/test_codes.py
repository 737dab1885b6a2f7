"""`vaekit encode` / `vaekit decode` end to end on tiny runs: the codes are the encoder means,
ids and labels travel with them in every format, decoding gives the decoder means, and bad
input is one line that names the file."""

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from vaekit import open_run
from vaekit.cli import main
from vaekit.latent.encoding import decode_means, encode_means

QUICK = ["--epochs", "2", "--hidden", "32", "--limit", "300", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A digits run (latent 4), a table run with a label column (latent 2), an image folder."""
    root = tmp_path_factory.mktemp("codes")
    assert main(["train", "digits", *QUICK, "--latent-dim", "4", "--out", str(root / "digits")]) == 0
    rng = np.random.default_rng(0)
    t = rng.normal(size=(200, 1))
    rows = np.hstack([t, 2 * t + 1, rng.normal(size=(200, 1))])
    table = root / "table.csv"
    table.write_text("a,b,c,kind\n" + "\n".join(f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{'yes' if r[0] > 0 else 'no'}"
                                                for r in rows) + "\n")
    assert main(["train", str(table), "--label-column", "kind", "--epochs", "2", "--latent-dim", "2",
                 "--hidden", "16", "--quiet", "--out", str(root / "table")]) == 0
    folder = root / "folder"
    x = open_run(root / "digits").load_data().test[:6]
    for i, img in enumerate(x):
        (folder / ("odd" if i % 2 else "even")).mkdir(parents=True, exist_ok=True)
        Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)).save(folder / ("odd" if i % 2 else "even")
                                                                               / f"d{i}.png")
    return {"digits": root / "digits", "table": root / "table", "table_csv": table, "folder": folder}


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_csv(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_encode_writes_the_encoder_means_with_ids_and_labels_in_every_format(runs, tmp_path, capsys):
    run = open_run(runs["digits"])
    bundle = run.load_data()
    expected = encode_means(run.model, bundle.test).numpy()
    labels = bundle.test_labels.tolist()
    for name in ("codes.npy", "codes.csv", "codes.parquet"):
        code, out, err = cli(capsys, "encode", runs["digits"], "digits", "--split", "test", "-o", tmp_path / name)
        assert code == 0, err
        assert f"{len(expected)} codes of 4 dimensions" in out

    npy = np.load(tmp_path / "codes.npy")
    assert npy.dtype == np.float32 and npy.shape == expected.shape
    np.testing.assert_array_equal(npy, expected)
    header, rows = read_csv(tmp_path / "codes.ids.csv")
    assert header == ["id", "label"] and [int(r[0]) for r in rows] == list(range(len(expected)))
    assert [int(r[1]) for r in rows] == labels

    header, rows = read_csv(tmp_path / "codes.csv")
    assert header == ["id", "label", "z0", "z1", "z2", "z3"]
    np.testing.assert_array_equal(np.array([r[2:] for r in rows], dtype=np.float32), expected)  # 9 digits: exact
    assert [int(r[1]) for r in rows] == labels

    table = pq.read_table(tmp_path / "codes.parquet").to_pydict()
    assert list(table) == ["id", "label", "z0", "z1", "z2", "z3"]
    assert table["id"] == list(range(len(expected))) and table["label"] == [str(k) for k in labels]  # class names
    np.testing.assert_array_equal(np.array([table[f"z{j}"] for j in range(4)], dtype=np.float32).T, expected)


def test_decode_turns_codes_back_into_the_reconstructions_one_png_per_row(runs, tmp_path, capsys):
    run = open_run(runs["digits"])
    x = run.load_data().test
    assert cli(capsys, "encode", runs["digits"], "digits", "-o", tmp_path / "codes.npy")[0] == 0
    code, _, err = cli(capsys, "decode", runs["digits"], tmp_path / "codes.npy", "-o", tmp_path / "images")
    assert code == 0, err
    files = sorted((tmp_path / "images").iterdir())
    assert len(files) == len(x) and files[0].name == "000.png"  # ids from the sidecar, zero-padded
    expected = run.model.reconstruct(x).clamp(0, 1)
    for i in (0, 7, len(x) - 1):
        got = np.asarray(Image.open(tmp_path / "images" / f"{i:03d}.png"), dtype=np.float32) / 255
        assert got.shape == (8, 8)
        np.testing.assert_allclose(got, expected[i, 0].numpy(), atol=0.5 / 255 + 1e-6)
    code, _, err = cli(capsys, "decode", runs["digits"], tmp_path / "codes.npy", "-o", tmp_path / "images")
    assert code == 2 and "already exists" in err and err.count("\n") == 1  # nothing overwritten


def test_an_image_folder_carries_file_ids_and_folder_labels_and_parquet_codes_decode(runs, tmp_path, capsys):
    out = tmp_path / "folder.parquet"
    assert cli(capsys, "encode", runs["digits"], runs["folder"], "-o", out)[0] == 0
    table = pq.read_table(out).to_pydict()
    assert table["id"] == ["even/d0.png", "even/d2.png", "even/d4.png", "odd/d1.png", "odd/d3.png", "odd/d5.png"]
    assert table["label"] == ["even"] * 3 + ["odd"] * 3
    code, _, err = cli(capsys, "decode", runs["digits"], out, "-o", tmp_path / "images")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        "even_d0.png", "even_d2.png", "even_d4.png", "odd_d1.png", "odd_d3.png", "odd_d5.png"]


def test_a_table_run_encodes_rows_with_their_labels_and_decodes_to_rows_in_original_units(runs, tmp_path, capsys):
    out = tmp_path / "codes.csv"
    code, _, err = cli(capsys, "encode", runs["table"], runs["table_csv"], "-o", out, "--logvar")
    assert code == 0, err
    header, rows = read_csv(out)
    assert header == ["id", "label", "z0", "z1", "logvar0", "logvar1"]
    source = read_csv(runs["table_csv"])[1]
    assert [r[1] for r in rows] == [r[3] for r in source] and len(rows) == 200
    code, _, err = cli(capsys, "decode", runs["table"], out, "-o", tmp_path / "rows.csv")
    assert code == 0, err
    header, decoded = read_csv(tmp_path / "rows.csv")
    assert header == ["a", "b", "c"] and len(decoded) == 200
    run = open_run(runs["table"])
    z = torch.tensor([[float(v) for v in r[2:4]] for r in rows])
    expected = run.standardizer.inverse_transform(decode_means(run.model, z))
    np.testing.assert_allclose(np.array(decoded, dtype=np.float64), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_sample_draws_around_the_means_and_repeats_with_its_seed(runs, tmp_path, capsys):
    for name, seed in (("a.npy", 1), ("b.npy", 1), ("c.npy", 2)):
        assert cli(capsys, "encode", runs["digits"], "digits", "--sample", "--seed", seed, "--logvar",
                   "-o", tmp_path / name)[0] == 0
    assert cli(capsys, "encode", runs["digits"], "digits", "-o", tmp_path / "means.npy")[0] == 0
    a, b, c, means = (np.load(tmp_path / n) for n in ("a.npy", "b.npy", "c.npy", "means.npy"))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, means)
    std = np.exp(0.5 * np.load(tmp_path / "a.logvar.npy"))
    standardized = (a - means) / std
    assert abs(standardized.mean()) < 0.2 and 0.8 < standardized.std() < 1.2  # N(mean, std) draws


def test_codes_of_the_wrong_width_name_the_file_and_the_expected_latent_dim(runs, tmp_path, capsys):
    np.save(tmp_path / "wide.npy", np.zeros((3, 5), dtype=np.float32))
    code, _, err = cli(capsys, "decode", runs["digits"], tmp_path / "wide.npy", "-o", tmp_path / "out")
    assert code == 2 and "wide.npy" in err and "5 columns" in err and "latent_dim is 4" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
    (tmp_path / "narrow.csv").write_text("id,z0,z1\n0,0.1,0.2\n")
    code, _, err = cli(capsys, "decode", runs["digits"], tmp_path / "narrow.csv", "-o", tmp_path / "out")
    assert code == 2 and "narrow.csv" in err and "latent_dim is 4" in err and "z0 .. z3" in err
    (tmp_path / "nan.csv").write_text("z0,z1,z2,z3\n0,0,nan,0\n")
    code, _, err = cli(capsys, "decode", runs["digits"], tmp_path / "nan.csv", "-o", tmp_path / "out")
    assert code == 2 and "nan.csv" in err and "row 0" in err


def test_encode_errors_are_one_line_and_write_nothing(runs, tmp_path, capsys):
    code, _, err = cli(capsys, "encode", runs["digits"], "digits", "-o", tmp_path / "codes.txt")
    assert code == 2 and "codes.txt" in err and ".npy, .csv, .parquet" in err
    code, _, err = cli(capsys, "encode", runs["digits"], runs["folder"], "--split", "val", "-o", tmp_path / "c.npy")
    assert code == 2 and "--split applies to named datasets" in err
    code, _, err = cli(capsys, "encode", runs["digits"], "digits", "--split", "dev", "-o", tmp_path / "c.npy")
    assert code == 2 and "--split" in err
    assert not list(tmp_path.iterdir())
