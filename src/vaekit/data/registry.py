"""Named datasets: where their official files live, their checksums, and how to decode them.

Each dataset has one or more *forms* (sets of files with a reader). Forms are tried in
order among local files (``$VAEKIT_DATA_DIR``, then the cache); if none is complete
locally, the first form that has download URLs is downloaded. For MNIST-like datasets the
one form is the official idx files; Frey and Olivetti faces also accept the converted
``.npz`` files of a shared data folder (no official checksum exists for those containers),
and otherwise download the original ``.mat`` files.

Scaling: pixels are divided by 255 (digits: by 16) into [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.data.download import RemoteFile, fetch, find_all
from vaekit.data.idx import read_idx
from vaekit.data.parts import Parts
from vaekit.errors import VaekitError

Reader = Callable[[dict[str, Path]], Parts]


@dataclass(frozen=True)
class Form:
    """A set of files that together hold the dataset, and the function that decodes them."""

    files: tuple[RemoteFile, ...]
    read: Reader


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: ``folder`` under the data/cache dir, its forms, or an ``embedded`` loader."""

    name: str
    description: str
    reference: str
    folder: str | None = None
    forms: tuple[Form, ...] = ()
    embedded: Callable[[], Parts] | None = None

    def load(self) -> Parts:
        if self.embedded is not None:
            return self.embedded()
        assert self.folder is not None
        for form in self.forms:
            paths = find_all(self.folder, form.files)
            if paths is not None:
                return form.read(paths)
        form = next(f for f in self.forms if all(spec.urls for spec in f.files))
        return form.read(fetch(self.folder, form.files))


# --- digits (scikit-learn, embedded) -------------------------------------------------


def _load_digits() -> Parts:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return Parts(
        x=x_train, y=y_train, test_x=x_test, test_y=y_test, kind="image", class_names=[str(i) for i in range(10)]
    )


# --- MNIST-format idx datasets -------------------------------------------------------


def _idx_files(mirrors: tuple[str, ...], checksums: dict[str, tuple[str, str]]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(name, tuple(m + name for m in mirrors), sha256=sha, md5=md5)
        for name, (md5, sha) in checksums.items()
    )


def _read_idx_pair(paths: dict[str, Path], images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(paths[images])
    y = read_idx(paths[labels])
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise VaekitError(
            f"'{paths[images]}' / '{paths[labels]}': expected images (N, H, W) and N labels, "
            f"got shapes {x.shape} and {y.shape}"
        )
    return (x.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)


def _read_mnist_like(class_names: list[str], binarize_eval: bool = False) -> Reader:
    def read(paths: dict[str, Path]) -> Parts:
        x, y = _read_idx_pair(paths, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
        tx, ty = _read_idx_pair(paths, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
        return Parts(x=x, y=y, test_x=tx, test_y=ty, kind="image", class_names=class_names, binarize_eval=binarize_eval)

    return read


MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_FILES = _idx_files(
    MNIST_MIRRORS,
    {  # name: (official md5, sha256)
        "train-images-idx3-ubyte.gz": (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        "train-labels-idx1-ubyte.gz": (
            "d53e105ee54ea40749a09fcbcd1e9432",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "9fb629c4189551a2d022fa330f9573f3",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "ec29112dd5afa0611ce80d1b7f02629c",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    },
)

FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
    "b2617bb6d3ffa2e429640350f613e3291e10b141/data/fashion/",
)
FASHION_FILES = _idx_files(
    FASHION_MIRRORS,
    {
        "train-images-idx3-ubyte.gz": (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        ),
        "train-labels-idx1-ubyte.gz": (
            "25c81989df183df01b3e8a0aad5dffbe",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "bef4ecab320f06d8554ea6380940ec79",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "bb300cfdad3c16e7a12a480ee83cd310",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ),
    },
)
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
DIGIT_CLASSES = [str(i) for i in range(10)]


# --- statically binarized MNIST (Larochelle & Murray 2011) ----------------------------


def _binary_images(name: str, array: np.ndarray, rows: int) -> np.ndarray:
    if array.shape != (rows, 784) or not np.isin(array, (0, 1)).all():
        raise VaekitError(
            f"'{name}': expected {rows} rows of 784 values 0/1, got shape {array.shape}; "
            "the file is damaged (delete it and try again)"
        )
    return array.astype(np.float32).reshape(-1, 1, 28, 28)


def _read_static_npz(paths: dict[str, Path]) -> Parts:
    path = paths["binarized_mnist.npz"]
    with np.load(path, allow_pickle=False) as z:
        train = _binary_images(f"{path}[train]", z["train"], 50000)
        val = _binary_images(f"{path}[valid]", z["valid"], 10000)
        test = _binary_images(f"{path}[test]", z["test"], 10000)
    return Parts(x=train, val_x=val, test_x=test, kind="image")


def _read_amat(path: Path, rows: int) -> np.ndarray:
    try:
        values = np.array(path.read_bytes().split(), dtype=np.uint8)
    except ValueError as exc:
        raise VaekitError(f"cannot read '{path}': {exc} (delete it and try again)") from exc
    return _binary_images(str(path), values.reshape(-1, 784) if values.size % 784 == 0 else values, rows)


def _read_static_amat(paths: dict[str, Path]) -> Parts:
    return Parts(
        x=_read_amat(paths["binarized_mnist_train.amat"], 50000),
        val_x=_read_amat(paths["binarized_mnist_valid.amat"], 10000),
        test_x=_read_amat(paths["binarized_mnist_test.amat"], 10000),
        kind="image",
    )


LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"


# --- faces ---------------------------------------------------------------------------


def _faces(path: Path, images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    if images.shape != shape:
        raise VaekitError(f"'{path}': expected images of shape {shape}, got {images.shape} (the file is damaged)")
    return (images.astype(np.float32) / 255.0)[:, None]


def _read_frey_npz(paths: dict[str, Path]) -> Parts:
    path = paths["frey_faces.npz"]
    with np.load(path, allow_pickle=False) as z:
        x = _faces(path, z["images"], (1965, 28, 20))
    return Parts(x=x, kind="image", likelihood="gaussian")


def _loadmat(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        return np.asarray(loadmat(path)[key])
    except Exception as exc:  # scipy raises assorted errors on damaged files
        raise VaekitError(f"cannot read '{path}': {exc} (delete it and try again)") from exc


def _read_frey_mat(paths: dict[str, Path]) -> Parts:
    path = paths["frey_rawface.mat"]
    ff = _loadmat(path, "ff")  # (560, 1965): one 28 x 20 image (row-major) per column
    return Parts(x=_faces(path, ff.T.reshape(-1, 28, 20), (1965, 28, 20)), kind="image", likelihood="gaussian")


def _olivetti(x: np.ndarray) -> Parts:
    return Parts(
        x=x, y=np.arange(400, dtype=np.int64) // 10, kind="image", class_names=[f"person {i}" for i in range(40)]
    )


def _read_olivetti_npz(paths: dict[str, Path]) -> Parts:
    path = paths["olivetti_faces.npz"]
    with np.load(path, allow_pickle=False) as z:
        return _olivetti(_faces(path, z["images"], (400, 64, 64)))


def _read_olivetti_mat(paths: dict[str, Path]) -> Parts:
    path = paths["olivettifaces.mat"]
    faces = _loadmat(path, "faces")  # (4096, 400), each column a 64 x 64 image stored column-major
    images = faces.T.reshape(-1, 64, 64).transpose(0, 2, 1)
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return _olivetti(_faces(path, images, (400, 64, 64)))


# --- the registry --------------------------------------------------------------------

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits",
            "scikit-learn's 1,797 8x8 handwritten digits (embedded, no download); fixed stratified 20% test split",
            "Alpaydin & Kaynak 1998 (UCI optdigits)",
            embedded=_load_digits,
        ),
        DatasetSpec(
            "mnist",
            "MNIST, 60,000 + 10,000 28x28 grey digits in [0, 1], labels 0-9",
            "LeCun et al. 1998",
            folder="mnist",
            forms=(Form(MNIST_FILES, _read_mnist_like(DIGIT_CLASSES)),),
        ),
        DatasetSpec(
            "mnist-binarized",
            "MNIST with dynamic binarization: train resampled from Bernoulli(pixel) each epoch, "
            "val/test binarized once with fixed seeds",
            "Burda et al. 2016 (IWAE)",
            folder="mnist",
            forms=(Form(MNIST_FILES, _read_mnist_like(DIGIT_CLASSES, binarize_eval=True)),),
        ),
        DatasetSpec(
            "mnist-binarized-static",
            "the fixed binarization of MNIST, 50,000 / 10,000 / 10,000 (official splits), no labels",
            "Larochelle & Murray 2011",
            folder="binarized-mnist",
            forms=(
                Form(
                    (
                        RemoteFile(
                            "binarized_mnist.npz",
                            sha256="350243cb824d66d022e0c3e87cac231231668817ff03f5f6d7b6533017d56b4b",
                            md5="6a167d58bf86f02bdbe2f558ff907ce0",
                        ),
                    ),
                    _read_static_npz,
                ),
                Form(
                    tuple(
                        RemoteFile(f"binarized_mnist_{part}.amat", (f"{LAROCHELLE}binarized_mnist_{part}.amat",))
                        for part in ("train", "valid", "test")
                    ),
                    _read_static_amat,
                ),
            ),
        ),
        DatasetSpec(
            "fashion-mnist",
            "Fashion-MNIST, 60,000 + 10,000 28x28 grey clothing images in [0, 1], 10 classes",
            "Xiao et al. 2017",
            folder="fashion-mnist",
            forms=(Form(FASHION_FILES, _read_mnist_like(FASHION_CLASSES)),),
        ),
        DatasetSpec(
            "frey-faces",
            "Frey Face, 1,965 28x20 grey face images in [0, 1], no labels, Gaussian likelihood",
            "Kingma & Welling 2014",
            folder="frey-faces",
            forms=(
                Form(
                    (
                        RemoteFile(
                            "frey_faces.npz",
                            sha256="3c70375e0a9c4751ad49ad5f1f692bd094c46f133cf4aa8ea77d1cb14e1efcd1",
                            md5="8d5f1ecf259d2d1c5821d02ba41ea249",
                        ),
                    ),
                    _read_frey_npz,
                ),
                # No checksum is published for the original file; its shape is checked instead.
                Form(
                    (RemoteFile("frey_rawface.mat", ("https://cs.nyu.edu/~roweis/data/frey_rawface.mat",)),),
                    _read_frey_mat,
                ),
            ),
        ),
        DatasetSpec(
            "olivetti-faces",
            "Olivetti faces, 400 64x64 grey images in [0, 1], 40 people (labels) x 10",
            "Samaria & Harter 1994",
            folder="olivetti-faces",
            forms=(
                Form(
                    (
                        RemoteFile(
                            "olivetti_faces.npz",
                            sha256="cc3cecd90c640c96d3aac78023ce83a5d9d6d006244611031ac9ca033490981f",
                            md5="5daa0c18e9a53a4fe9bcf43885911482",
                        ),
                    ),
                    _read_olivetti_npz,
                ),
                Form(
                    (
                        RemoteFile(
                            "olivettifaces.mat",
                            ("https://ndownloader.figshare.com/files/5976027",),
                            sha256="b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794",
                        ),
                    ),
                    _read_olivetti_mat,
                ),
            ),
        ),
        DatasetSpec(
            "shapes",
            "dSprites' factor grid re-rendered here (not the dSprites file): 737,280 64x64 binary sprites, "
            "3 shapes x 6 scales x 40 orientations x 32 x 32 positions, factor labels; use --limit",
            "Matthey et al. 2017 (dSprites), re-rendered by vaekit.data.shapes",
            embedded=lambda: _load_shapes("shapes"),
        ),
        DatasetSpec(
            "shapes-small",
            "the shapes grid with 10 orientations and 8 x 8 positions: 11,520 64x64 binary sprites, factor labels",
            "vaekit.data.shapes",
            embedded=lambda: _load_shapes("shapes-small"),
        ),
    )
}


def _load_shapes(name: str) -> Parts:
    from vaekit.data.shapes import load_parts  # rendered on demand; no file to find

    return load_parts(name)


def known_datasets() -> list[str]:
    """Names accepted by ``vaekit.data.load``."""
    return list(DATASETS)


def normalize_name(source: str) -> str:
    """Lower case, ``_`` and spaces as ``-``: ``Fashion_MNIST`` -> ``fashion-mnist``."""
    return source.strip().lower().replace("_", "-").replace(" ", "-")


def get(name: str) -> DatasetSpec:
    """The spec of a named dataset, or a ``VaekitError`` listing the known names."""
    spec = DATASETS.get(normalize_name(name))
    if spec is None:
        raise VaekitError(f"unknown dataset '{name}' (known datasets: {', '.join(known_datasets())})")
    return spec
