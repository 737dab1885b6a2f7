"""``shapes``: binary 64x64 sprites on dSprites' factor grid, rendered here (not the dSprites file).

dSprites (Matthey et al. 2017) is the standard test bed of disentanglement: every image is
one point of a full grid of independent generative factors, so a representation can be
scored against the factors that made it. Its file cannot be downloaded here, so this module
*re-renders* the same grid procedurally: 3 shapes (square, ellipse, heart) x 6 scales x 40
orientations x 32 x 32 positions = 737,280 binary 64x64 images. The sprites are drawn by our
own geometry, not dSprites' bitmaps, so figures measured on ``shapes`` are indicative and not
comparable digit for digit with published dSprites numbers.

Factors, in this column order (``FACTOR_NAMES``), stored as integer indices into their grid:

==============  =====  ======================================================
factor          sizes  value of index i (``ShapesGrid.values``), as in dSprites
==============  =====  ======================================================
``shape``       3      0 square, 1 ellipse, 2 heart (dSprites counts them 1..3)
``scale``       6      ``linspace(0.5, 1, 6)[i]``
``orientation`` 40     ``linspace(0, 2 pi, 40)[i]`` radians, counter-clockwise; both ends
                       are included as in dSprites, so index 0 and 39 draw the same image
``pos_x``       32     ``linspace(0, 1, 32)[i]``: left to right
``pos_y``       32     ``linspace(0, 1, 32)[i]``: top to bottom (image rows)
==============  =====  ======================================================

Rendering: each shape is an implicit region (square ``max(|u|, |v|) <= 1``, ellipse with
axes 1.4 x 0.7, the heart curve ``(x^2 + y^2 - 1)^3 <= x^2 y^3``) in a frame of 10 px x scale,
rotated, and tested at pixel centres: binary, no anti-aliasing, float64 geometry. The
3 x 6 x 40 distinct sprites are drawn once into 33 x 33 patches (a bank of ~0.8 MB); an
image is its patch pasted at the position, whose centre moves 1 px per step from pixel 16 to
pixel 47 (margins of 16 px; the largest sprite reaches 14.2 px from its centre). So any
image is rendered on demand, in microseconds, and nothing is cached on disk.

``shapes-small`` is the same geometry on a coarser grid (3 x 6 x 10 orientations x 8 x 8
positions = 11,520 images) for tests and quick runs; its positions are the nearest whole
pixels of ``linspace(0, 1, 8)`` over the same 31 px travel.

As a named dataset (``vaekit.data.load("shapes")``): examples are listed in a fixed
shuffled order of the grid (seed 0), so ``limit`` keeps a uniform random subset of the
factors; the first ``val`` / ``test`` examples of that order are the validation and test
splits, the rest is the training split. Class labels are the shape (square, ellipse,
heart). ``factors(dataset, split)`` gives each example's factor indices. Images are
rendered when a split is taken; a split taking over a quarter of the memory as float32 is refused with
the ``limit`` to use (the whole training split of ``shapes`` needs 11.8 GB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from vaekit.data.parts import Parts
from vaekit.errors import VaekitError
from vaekit.memory import check_memory, memory_budget

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPE_NAMES = ("square", "ellipse", "heart")
IMAGE_SIZE = 64
#: Side of the patch a sprite is drawn in; its centre is the patch's pixel 16.
PATCH = 33
#: Pixels per unit of the shape frame at scale 1.
UNIT_PX = 10.0
#: Pixel travel of the centre from position 0 to position 1 (pixel 16 to pixel 47).
TRAVEL_PX = IMAGE_SIZE - PATCH  # 31
#: A split may take at most 1 / MEMORY_SHARE of the memory free (the trainer and the
#: encoder's passes over it need room beside it).
MEMORY_SHARE = 4
#: Seed of the fixed order in which the grid is listed as a dataset.
ORDER_SEED = 0


@dataclass(frozen=True)
class ShapesGrid:
    """One factor grid: its sizes per factor and how many examples its val / test splits hold.

    Implements the ``FactorSampler`` protocol of ``vaekit.evaluation.disentanglement``
    (``factor_names``, ``factor_sizes``, ``observations``, ``class_labels``).
    """

    name: str
    orientations: int
    positions: int
    n_val: int
    n_test: int
    shapes: int = 3
    scales: int = 6

    @property
    def factor_names(self) -> tuple[str, ...]:
        return FACTOR_NAMES

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (self.shapes, self.scales, self.orientations, self.positions, self.positions)

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def factors(self, index: np.ndarray) -> np.ndarray:
        """Factor indices ``(n, 5)`` int64 of grid indices ``(n,)`` (row-major: pos_y varies fastest)."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise VaekitError(f"{self.name}: grid index out of range 0..{len(self) - 1}")
        return np.stack(np.unravel_index(index, self.factor_sizes), axis=-1).astype(np.int64)

    def index(self, factors: np.ndarray) -> np.ndarray:
        """Grid indices ``(n,)`` of factor indices ``(n, 5)``."""
        f = self._checked(factors)
        return np.ravel_multi_index(tuple(f.T), self.factor_sizes).astype(np.int64)

    def values(self, factors: np.ndarray) -> np.ndarray:
        """Factor values ``(n, 5)`` float64: shape index, scale 0.5..1, orientation 0..2 pi, positions 0..1."""
        f = self._checked(factors)
        return np.stack([f[:, 0].astype(np.float64), _scales(self.scales)[f[:, 1]],
                         _orientations(self.orientations)[f[:, 2]], _positions(self.positions)[f[:, 3]],
                         _positions(self.positions)[f[:, 4]]], axis=1)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """The images ``(n, 1, 64, 64)`` float32 (0 or 1) of factor indices ``(n, 5)``."""
        f = self._checked(factors)
        bank = _sprite_bank(self.scales, self.orientations)
        offsets = _pixel_offsets(self.positions)
        patches = bank[f[:, 0], f[:, 1], f[:, 2]]  # (n, PATCH, PATCH)
        out = np.zeros((len(f), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        for i, (r, c) in enumerate(zip(offsets[f[:, 4]].tolist(), offsets[f[:, 3]].tolist(), strict=True)):
            out[i, 0, r:r + PATCH, c:c + PATCH] = patches[i]  # pos_y moves rows, pos_x columns
        return out

    def images(self, index: np.ndarray) -> np.ndarray:
        """The images ``(n, 1, 64, 64)`` float32 of grid indices ``(n,)``."""
        return self.observations(self.factors(index))

    def class_labels(self, factors: np.ndarray) -> np.ndarray:
        """The dataset's class labels of factor indices: the shape (0 square, 1 ellipse, 2 heart)."""
        return self._checked(factors)[:, 0].copy()

    def order(self) -> np.ndarray:
        """The fixed shuffled order (seed ``ORDER_SEED``) in which the dataset lists the grid."""
        return _order(len(self))

    def split_grid_indices(self, split: str, train_positions: np.ndarray | None = None) -> np.ndarray:
        """Grid indices of a dataset split: ``val`` / ``test`` are fixed; ``train`` needs the
        positions of its examples among the training part (``Dataset.extras['train_index']``)."""
        order = self.order()
        if split == "val":
            return order[:self.n_val]
        if split == "test":
            return order[self.n_val:self.n_val + self.n_test]
        if split == "train":
            rest = order[self.n_val + self.n_test:]
            return rest if train_positions is None else rest[np.asarray(train_positions, dtype=np.int64)]
        raise VaekitError(f"split: expected one of train, val, test, got '{split}'")

    def parts(self) -> Parts:
        """The grid as ``Parts`` for ``vaekit.data.load``: lazily rendered training part, fixed val / test."""
        val, test = self.split_grid_indices("val"), self.split_grid_indices("test")
        train = self.split_grid_indices("train")
        shape_of = self.factors(train)[:, 0]
        return Parts(
            x=LazyImages(self, train),  # type: ignore[arg-type]  # indexable like an array; rendered when taken
            y=shape_of,
            val_x=self.images(val), val_y=self.factors(val)[:, 0],
            test_x=self.images(test), test_y=self.factors(test)[:, 0],
            kind="image", class_names=list(SHAPE_NAMES),
        )

    def _checked(self, factors: np.ndarray) -> np.ndarray:
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != len(FACTOR_NAMES) or not np.issubdtype(f.dtype, np.integer):
            raise VaekitError(f"{self.name}: expected factor indices of shape (n, {len(FACTOR_NAMES)}) as integers "
                              f"({', '.join(FACTOR_NAMES)}), got {f.dtype} of shape {f.shape}")
        sizes = np.asarray(self.factor_sizes)
        if f.size and ((f < 0).any() or (f >= sizes).any()):
            raise VaekitError(f"{self.name}: factor indices out of range (sizes {self.factor_sizes})")
        return f.astype(np.int64)


GRIDS: dict[str, ShapesGrid] = {
    "shapes": ShapesGrid("shapes", orientations=40, positions=32, n_val=5_000, n_test=10_000),
    "shapes-small": ShapesGrid("shapes-small", orientations=10, positions=8, n_val=1_000, n_test=2_000),
}


def grid(name: str) -> ShapesGrid:
    """The grid of a shapes dataset (``shapes`` or ``shapes-small``)."""
    if name not in GRIDS:
        raise VaekitError(f"'{name}' is not a shapes dataset (expected one of: {', '.join(GRIDS)})")
    return GRIDS[name]


def factors(dataset: object, split: str = "train") -> np.ndarray:
    """Factor indices ``(n, 5)`` of a loaded shapes dataset's split, row for row.

    ``dataset``: a ``vaekit.data.Dataset`` of ``shapes`` or ``shapes-small`` (as returned by
    ``vaekit.data.load`` or ``Run.load_data``).
    """
    info = getattr(dataset, "info", None)
    g = grid(getattr(info, "name", "?"))
    positions = getattr(dataset, "extras", {}).get("train_index") if split == "train" else None
    if split == "train" and positions is None:
        raise VaekitError(f"dataset '{g.name}': the training split has no 'train_index' to find its factors")
    index = g.split_grid_indices(split, None if positions is None else np.asarray(positions))
    return g.factors(index)


class LazyImages:
    """The training part of a grid, indexable like an ``(n, 1, 64, 64)`` float32 array but
    rendered only when indexed, so a dataset can list 722,280 images it never holds at once."""

    dtype = np.dtype(np.float32)

    def __init__(self, grid: ShapesGrid, grid_index: np.ndarray) -> None:
        self.grid = grid
        self.grid_index = grid_index
        self.shape = (len(grid_index), 1, IMAGE_SIZE, IMAGE_SIZE)

    def __len__(self) -> int:
        return len(self.grid_index)

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        chosen = self.grid_index[index]
        chosen = np.atleast_1d(chosen)
        _check_memory(len(chosen), self.grid.name)
        return self.grid.images(chosen)


def _check_memory(n: int, name: str) -> None:
    """Refuse a split that would not fit: float32 images need 16 KB each, in at most
    1 / MEMORY_SHARE of the memory free (``vaekit.memory.check_memory``)."""
    image = IMAGE_SIZE * IMAGE_SIZE * 4
    fits = max(1, memory_budget(share=MEMORY_SHARE) // image)
    check_memory(n * image, f"{name}: {n:,} training images as float32", f"set limit (--limit {min(fits, 100_000)}, "
                 "a random subset)", share=MEMORY_SHARE)


def _scales(n: int) -> np.ndarray:
    return np.linspace(0.5, 1.0, n)


def _orientations(n: int) -> np.ndarray:
    return np.linspace(0.0, 2 * np.pi, n)


def _positions(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def _pixel_offsets(n: int) -> np.ndarray:
    """Top-left corner of the patch per position index: the centre is pixel ``16 + offset``."""
    return np.rint(_positions(n) * TRAVEL_PX).astype(np.int64)


@cache
def _order(n: int) -> np.ndarray:
    order = np.random.default_rng(ORDER_SEED).permutation(n).astype(np.int64)
    order.setflags(write=False)
    return order


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether shape-frame points (u right, v up, in units) lie in the shape."""
    if shape == 0:  # square, side 2
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == 1:  # ellipse, semi-axes 1.4 x 0.7
        return (u / 1.4) ** 2 + (v / 0.7) ** 2 <= 1.0
    x, y = u / 0.85, v / 0.85 + 0.12  # heart curve, its bounding box centred, ~1.3 units from centre at most
    return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0


@cache
def _sprite_bank(scales: int, orientations: int) -> np.ndarray:
    """Every distinct sprite ``(3, scales, orientations, PATCH, PATCH)`` uint8, drawn at pixel centres."""
    centre = PATCH // 2
    px = np.arange(PATCH, dtype=np.float64) - centre
    x, y_up = np.meshgrid(px, -px)  # columns right, rows up
    bank = np.zeros((len(SHAPE_NAMES), scales, orientations, PATCH, PATCH), dtype=np.uint8)
    for s in range(len(SHAPE_NAMES)):
        for i, scale in enumerate(_scales(scales)):
            for j, angle in enumerate(_orientations(orientations)):
                c, sn = math.cos(angle), math.sin(angle)
                unit = UNIT_PX * scale
                u = (c * x + sn * y_up) / unit  # rotate the pixel grid by -angle: the shape turns by +angle
                v = (-sn * x + c * y_up) / unit
                bank[s, i, j] = _inside(s, u, v)
    bank.setflags(write=False)
    return bank


def load_parts(name: str) -> Parts:
    """The registry's loader of a shapes dataset."""
    return grid(name).parts()
