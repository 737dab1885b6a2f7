"""Data loading: named datasets, user files, splits, checksums and downloads (no network)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.data import DataConfig, DataInfo, Dataset, Standardizer, download, known_datasets, load, load_for_model
from vaekit.data.download import RemoteFile
from vaekit.data.idx import read_idx
from vaekit.errors import VaekitError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="no local dataset copy at ../shared/data")


@pytest.fixture
def shared_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(SHARED))
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    return SHARED


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No data dir, an empty cache, and a network that must not be used."""
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(cache))

    def no_network(url: str, out, timeout: float = 0) -> None:
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(download, "fetch_url", no_network)
    return cache


def _assert_tensors(ds: Dataset) -> None:
    for t in (ds.train, ds.val, ds.test):
        if t is not None:
            assert t.dtype == torch.float32 and t.is_contiguous()
            assert tuple(t.shape[1:]) == ds.info.shape
    for y in (ds.train_labels, ds.val_labels, ds.test_labels):
        if y is not None:
            assert y.dtype == torch.int64


# --- config ------------------------------------------------------------------------------


def test_config_round_trip_and_validation() -> None:
    c = DataConfig(source="x.csv", val_fraction=0.2, label_column="y", limit=5)
    assert DataConfig.from_dict(c.to_dict()) == c
    with pytest.raises(VaekitError, match="val_fraction"):
        DataConfig(val_fraction=1.5).validate()
    with pytest.raises(VaekitError, match="unknown data setting"):
        DataConfig.from_dict({"source": "digits", "bogus": 1})
    with pytest.raises(VaekitError, match="channels"):
        load("digits", channels=2)


# --- named datasets --------------------------------------------------------------------


def test_digits_shapes_range_and_deterministic_split() -> None:
    a = load("digits")
    _assert_tensors(a)
    assert a.info.shape == (1, 8, 8) and a.info.kind == "image" and a.info.likelihood == "bernoulli"
    assert len(a.test) == 360 and len(a.train) + len(a.val) == 1437 and len(a.val) == 144
    assert a.train.min() >= 0 and a.train.max() == 1.0
    assert a.test_labels.bincount().min() >= 35  # stratified: ~36 per class
    b = load(DataConfig(source="digits"))
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val) and torch.equal(a.train_labels, b.train_labels)
    c = load("digits", split_seed=1)
    assert not torch.equal(a.val, c.val) and torch.equal(a.test, c.test)
    assert len(load("digits", limit=50).train) == 50


def test_known_and_unknown_names() -> None:
    names = known_datasets()
    assert {"digits", "mnist", "fashion-mnist", "mnist-binarized", "frey-faces", "olivetti-faces"} <= set(names)
    with pytest.raises(VaekitError, match="unknown dataset 'mnistt'") as err:
        load("mnistt")
    assert all(n in str(err.value) for n in names)
    with pytest.raises(VaekitError, match="image_size"):
        load("digits", image_size=16)


@needs_shared
def test_mnist_from_data_dir(shared_data: Path) -> None:
    ds = load("mnist", val_fraction=0.0)
    _assert_tensors(ds)
    assert ds.info.shape == (1, 28, 28) and ds.val is None
    assert len(ds.train) == 60000 and len(ds.test) == 10000
    assert ds.test_labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.train.min() >= 0.0 and ds.train.max() == 1.0
    small = load("mnist", limit=100)
    assert len(small.train) == 100 and len(small.val) == 6000 and len(small.train_labels) == 100


@needs_shared
def test_mnist_binarized_protocol(shared_data: Path) -> None:
    a = load("mnist-binarized", limit=200)
    b = load("mnist-binarized", limit=200)
    assert a.info.dynamic_binarization
    for t in (a.test, a.val):
        assert ((t == 0) | (t == 1)).all()
    assert torch.equal(a.test, b.test) and torch.equal(a.val, b.val)
    assert ((a.train > 0) & (a.train < 1)).any()  # grey levels kept for resampling
    v1 = a.train_epoch_view(torch.Generator().manual_seed(1))
    v2 = a.train_epoch_view(torch.Generator().manual_seed(2))
    assert ((v1 == 0) | (v1 == 1)).all() and not torch.equal(v1, v2)


@needs_shared
def test_data_dir_checksum_mismatch_is_an_error_and_keeps_the_file(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"not the real file")
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path))
    sha = "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    spec = RemoteFile("t10k-labels-idx1-ubyte.gz", sha256=sha)
    with pytest.raises(VaekitError, match="sha256 mismatch"):
        download.find_existing("mnist", spec)
    assert bad.exists()


# --- downloads -----------------------------------------------------------------------------


def _spec(payload: bytes, *urls: str) -> RemoteFile:
    return RemoteFile("blob.bin", urls or ("https://a.invalid/blob.bin",), sha256=hashlib.sha256(payload).hexdigest())


def test_download_from_file_url(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(cache))
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 1000)
    paths = download.fetch("things", [_spec(src.read_bytes(), src.as_uri())])  # the real urllib fetch
    assert paths["blob.bin"] == cache / "things" / "blob.bin"
    assert paths["blob.bin"].read_bytes() == src.read_bytes()


def test_download_tries_mirrors_and_is_atomic(offline: Path, monkeypatch) -> None:
    calls = []

    def fake(url: str, out, timeout: float = 0) -> None:
        calls.append(url)
        out.write(b"partial")
        if "first" in url:
            raise OSError("connection reset")
        out.write(b" and the rest")

    monkeypatch.setattr(download, "fetch_url", fake)
    spec = _spec(b"partial and the rest", "https://first.invalid/x", "https://second.invalid/x")
    path = download.fetch("f", [spec])["blob.bin"]
    assert calls == ["https://first.invalid/x", "https://second.invalid/x"]
    assert path.read_bytes() == b"partial and the rest"
    assert sorted(p.name for p in path.parent.iterdir()) == ["blob.bin"]  # no temp files left
    calls.clear()
    assert download.fetch("f", [spec])["blob.bin"] == path and calls == []  # cached and verified


def test_download_failure_and_checksum_mismatch_leave_no_file(offline: Path, monkeypatch) -> None:
    with pytest.raises(VaekitError, match=r"could not download blob\.bin from \[https://a\.invalid/blob\.bin\]") as e:
        download.fetch("f", [_spec(b"x")])
    assert "VAEKIT_DATA_DIR" in str(e.value) and "f/blob.bin" in str(e.value)

    monkeypatch.setattr(download, "fetch_url", lambda url, out, timeout=0: out.write(b"tampered"))
    with pytest.raises(VaekitError, match="sha256 mismatch"):
        download.fetch("f", [_spec(b"expected")])
    assert not (offline / "f").exists() or not any((offline / "f").iterdir())


def test_corrupt_cache_entry_is_fetched_again(offline: Path, monkeypatch) -> None:
    (offline / "f").mkdir(parents=True)
    (offline / "f" / "blob.bin").write_bytes(b"corrupt")
    monkeypatch.setattr(download, "fetch_url", lambda url, out, timeout=0: out.write(b"good"))
    assert download.fetch("f", [_spec(b"good")])["blob.bin"].read_bytes() == b"good"


def test_named_dataset_offline_error_names_the_fix(offline: Path) -> None:
    with pytest.raises(VaekitError, match="set VAEKIT_DATA_DIR to a folder holding mnist/"):
        load("mnist")


# --- idx -------------------------------------------------------------------------------


def _idx_bytes(a: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def test_idx_round_trip_and_truncation(tmp_path: Path) -> None:
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    good = tmp_path / "good-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(_idx_bytes(a)))
    assert np.array_equal(read_idx(good), a)
    short = tmp_path / "short-idx3-ubyte.gz"
    short.write_bytes(gzip.compress(_idx_bytes(a)[:-5]))
    with pytest.raises(VaekitError, match=r"short-idx3-ubyte\.gz"):
        read_idx(short)
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(good.read_bytes()[:-12])  # a truncated gzip stream
    with pytest.raises(VaekitError, match=r"cut-idx3-ubyte\.gz"):
        read_idx(cut)


# --- image folders ---------------------------------------------------------------------


def _png(path: Path, size: tuple[int, int], mode: str = "L", color: int | tuple = 255) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_image_folder_with_class_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _png(root / "cats" / "a.png", (12, 10))  # grey, W x H = 12 x 10
    _png(root / "cats" / "b.png", (30, 40), "L", 0)
    _png(root / "dogs" / "c.png", (20, 20), "RGB", (255, 0, 0))  # colour -> RGB for all
    (root / "dogs" / "notes.txt").write_text("ignored")
    ds = load(root, val_fraction=0.0, test_fraction=0.0)
    _assert_tensors(ds)
    assert ds.info.shape == (3, 10, 10)  # sizes differ: square of the smallest side
    assert ds.info.class_names == ["cats", "dogs"] and ds.train_labels.tolist() == [0, 0, 1]
    assert ds.extras["train_files"] == ["cats/a.png", "cats/b.png", "dogs/c.png"]
    assert torch.allclose(ds.train[0], torch.ones(3, 10, 10)) and ds.train[1].max() == 0
    red = ds.train[2]
    assert torch.allclose(red[0], torch.ones(10, 10)) and red[1:].max() == 0
    grey = load(root, image_size=8, channels=1, val_fraction=0.0, test_fraction=0.0)
    assert grey.info.shape == (1, 8, 8)
    assert torch.allclose(grey.train[2], torch.full((1, 8, 8), 0.299), atol=1e-3)


def test_flat_image_folder_keeps_common_size_and_grey(tmp_path: Path) -> None:
    for i in range(10):
        _png(tmp_path / "flat" / f"{i}.png", (6, 9), "RGB", (i * 20, i * 20, i * 20))  # grey content in RGB files
    ds = load(tmp_path / "flat")
    assert ds.info.shape == (1, 9, 6) and ds.train_labels is None and ds.info.class_names is None
    assert len(ds.train) == 8 and len(ds.val) == 1 and len(ds.test) == 1


def test_truncated_image_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _png(root / "ok.png", (8, 8))
    bad = root / "bad.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(bad)
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(VaekitError, match=r"cannot read image '.*bad\.png'"):
        load(root)


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaekitError, match="no images found"):
        load(tmp_path / "empty")
    with pytest.raises(VaekitError, match=r"no such file or directory: '.*nope\.csv' \(expected a dataset name \[dig"):
        load(str(tmp_path / "nope.csv"))
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(VaekitError, match=r"unsupported file type 'x\.txt' \(supported: .*\.npy.*\.parquet"):
        load(tmp_path / "x.txt")


def test_new_images_are_brought_to_a_trained_shape(tmp_path: Path) -> None:
    _png(tmp_path / "new" / "a.png", (50, 40), "RGB", (0, 255, 0))
    ds = load_for_model(tmp_path / "new", DataInfo(name="t", shape=(1, 28, 20)))
    assert ds.train.shape == (1, 1, 28, 20) and ds.val is None and ds.test is None


# --- arrays ----------------------------------------------------------------------------


def test_npy_shapes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(5))
    with pytest.raises(VaekitError, match=r"bad\.npy.*shape \(5,\).*expected \(N, D\)"):
        load(bad)
    np.save(bad, np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(VaekitError, match=r"shape \(2, 3, 4, 5, 6\)"):
        load(bad)
    hwc = tmp_path / "hwc.npy"
    np.save(hwc, np.full((20, 5, 6, 3), 255, dtype=np.uint8))
    ds = load(hwc)
    assert ds.info.shape == (3, 5, 6) and ds.info.kind == "image" and ds.train.max() == 1.0


def test_npz_keys_labels_and_standardization(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, X=rng.normal(5, 3, (100, 4)), y=rng.integers(0, 2, 100), test=rng.normal(5, 3, (10, 4)))
    ds = load(path)
    _assert_tensors(ds)
    assert ds.info.kind == "array" and ds.info.likelihood == "gaussian" and ds.standardizer is not None
    assert len(ds.test) == 10 and ds.test_labels is None and len(ds.train) + len(ds.val) == 100
    assert abs(float(ds.train.mean())) < 1e-5
    unit = tmp_path / "u.npy"
    np.save(unit, rng.random((30, 7)).astype(np.float32))
    assert load(unit).info.likelihood == "bernoulli" and load(unit).standardizer is None


# --- tables ----------------------------------------------------------------------------


def test_csv_bad_cells_name_column_and_row(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("age,height\n1,2\nabc,3\n")
    with pytest.raises(VaekitError, match=r"data\.csv: column 'age', row 2 \(line 3\): 'abc' is not a number"):
        load(path)
    path.write_text("age,height\n1,2\n4,NaN\n")
    with pytest.raises(VaekitError, match=r"column 'height', row 2 \(line 3\): 'NaN' is not a finite number"):
        load(path)
    path.write_text("age,height\n1,\n")
    with pytest.raises(VaekitError, match=r"column 'height', row 1 \(line 2\): empty cell"):
        load(path)
    path.write_text("age,height\n")
    with pytest.raises(VaekitError, match="no data rows"):
        load(path)


def _table(n: int = 200) -> tuple[list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(40, 10, n), rng.normal(170, 8, n), rng.normal(0, 1, n)])
    return ["age", "height", "score"], x, ["red" if v > 0 else "blue" for v in x[:, 2]]


def _write_csv(path: Path, names: list[str], x: np.ndarray, labels: list[str] | None = None) -> Path:
    header = [*names, "colour"] if labels else names
    lines = [",".join(header)]
    for i, row in enumerate(x):
        lines.append(",".join([repr(float(v)) for v in row] + ([labels[i]] if labels else [])))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_standardizer_fit_on_train_and_new_data(tmp_path: Path) -> None:
    names, x, labels = _table()
    path = _write_csv(tmp_path / "t.csv", names, x, labels)
    ds = load(path, label_column="colour")
    _assert_tensors(ds)
    assert ds.info.kind == "table" and ds.info.columns == names and ds.info.class_names == ["blue", "red"]
    assert len(ds.train) + len(ds.val) + len(ds.test) == 200 and len(ds.test) == 20
    train_rows = x[ds.extras["train_index"].numpy()]
    assert np.allclose(ds.standardizer.mean.numpy(), train_rows.mean(0), atol=1e-4)
    assert not np.allclose(ds.standardizer.mean.numpy(), x.mean(0), atol=1e-6)  # val/test rows not used
    assert ds.train_labels.tolist() == [int(labels[i] == "red") for i in ds.extras["train_index"]]

    saved = Standardizer.from_dict(ds.standardizer.to_dict())
    reordered = _write_csv(tmp_path / "new.csv", names[::-1], x[:5, ::-1])
    new = load_for_model(reordered, ds.info, saved)
    assert torch.allclose(new.train, saved.transform(torch.tensor(x[:5], dtype=torch.float32)), atol=1e-5)

    other = _write_csv(tmp_path / "other.csv", ["age", "weight", "score"], x[:5])
    with pytest.raises(VaekitError, match=r"missing \['height'\], extra \['weight'\]"):
        load_for_model(other, ds.info, saved)


def test_parquet_round_trip(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    names, x, labels = _table(50)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({**{n: x[:, j] for j, n in enumerate(names)}, "colour": labels}), path)
    ds = load(path, label_column="colour", val_fraction=0.0, test_fraction=0.0)
    assert ds.info.columns == names and ds.train.shape == (50, 3) and ds.info.class_names == ["blue", "red"]
    assert torch.allclose(ds.standardizer.mean.double(), torch.tensor(x.mean(0)), atol=1e-4)
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "b": ["1", "2", "x"]}), path)
    with pytest.raises(VaekitError, match=r"t\.parquet: column 'a', row 2: empty cell"):
        load(path)


def test_original_face_files_decode_like_the_converted_ones(tmp_path: Path) -> None:
    from scipy.io import savemat

    from vaekit.data import registry

    frey = np.random.default_rng(0).integers(0, 256, (1965, 28, 20), dtype=np.uint8)
    savemat(tmp_path / "frey_rawface.mat", {"ff": frey.reshape(1965, 560).T})
    parts = registry._read_frey_mat({"frey_rawface.mat": tmp_path / "frey_rawface.mat"})
    assert np.array_equal(parts.x[:, 0], frey / np.float32(255)) and parts.likelihood == "gaussian"

    faces = np.random.default_rng(1).integers(0, 243, (400, 64, 64), dtype=np.uint8)
    savemat(tmp_path / "o.mat", {"faces": faces.transpose(0, 2, 1).reshape(400, 4096).T})  # Roweis' layout
    parts = registry._read_olivetti_mat({"olivettifaces.mat": tmp_path / "o.mat"})
    assert np.array_equal(parts.x[:, 0], faces / np.float32(255)) and parts.y.tolist()[:11] == [0] * 10 + [1]


@needs_shared
def test_small_named_datasets_from_data_dir(shared_data: Path) -> None:
    frey = load("frey-faces")
    assert frey.info.shape == (1, 28, 20) and frey.info.likelihood == "gaussian"
    assert len(frey.train) + len(frey.val) + len(frey.test) == 1965 and len(frey.test) == 196
    faces = load("olivetti-faces")
    assert faces.info.shape == (1, 64, 64) and len(faces.info.class_names) == 40
    static = load("mnist-binarized-static")
    assert (len(static.train), len(static.val), len(static.test)) == (50000, 10000, 10000)
    assert ((static.test == 0) | (static.test == 1)).all() and not static.info.dynamic_binarization


@needs_shared
def test_grey_level_photographs_get_a_gaussian_with_a_fixed_std_and_digits_a_bernoulli(shared_data: Path) -> None:
    from vaekit.training.runs import model_config_for

    for name in ("frey-faces", "olivetti-faces"):  # under 1% of their pixels within 0.1 of 0 or 1
        info = load(name).info
        assert info.likelihood == "gaussian" and 0.03 < info.obs_std < 0.1  # half the spread about the mean face
        config = model_config_for(info, {})
        assert config.likelihood == "gaussian" and config.obs_std == info.obs_std and not config.learn_obs_std
        assert model_config_for(info, {"obs_std": 0.2}).obs_std == 0.2  # a std the user sets is kept
    for name in ("digits", "mnist"):  # mostly background and ink
        info = load(name, limit=500).info
        assert info.likelihood == "bernoulli" and info.obs_std is None
        assert model_config_for(info, {}).likelihood == "bernoulli"
