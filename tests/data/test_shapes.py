"""The procedural shapes dataset: dSprites' factor grid, deterministic binary images, factor labels."""

import math

import numpy as np
import pytest

from vaekit import data
from vaekit.data import shapes
from vaekit.errors import VaekitError

FULL = shapes.grid("shapes")
SMALL = shapes.grid("shapes-small")


def test_the_full_grid_is_dsprites_factor_grid():
    assert FULL.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert FULL.factor_sizes == (3, 6, 40, 32, 32)
    assert len(FULL) == 737_280
    assert SMALL.factor_sizes == (3, 6, 10, 8, 8) and len(SMALL) == 11_520


def test_a_grid_index_has_the_expected_factors_and_values():
    assert FULL.factors(np.array([0]))[0].tolist() == [0, 0, 0, 0, 0]
    assert FULL.factors(np.array([1]))[0].tolist() == [0, 0, 0, 0, 1]  # pos_y varies fastest
    assert FULL.factors(np.array([len(FULL) - 1]))[0].tolist() == [2, 5, 39, 31, 31]
    index = 2 * 6 * 40 * 32 * 32 + 3 * 40 * 32 * 32 + 10 * 32 * 32 + 7 * 32 + 20
    assert FULL.factors(np.array([index]))[0].tolist() == [2, 3, 10, 7, 20]
    f = np.random.default_rng(0).integers(0, FULL.factor_sizes, size=(100, 5))
    assert (FULL.factors(FULL.index(f)) == f).all()
    values = FULL.values(np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31]]))
    assert values[0].tolist() == [0.0, 0.5, 0.0, 0.0, 0.0]
    assert values[1].tolist() == pytest.approx([2.0, 1.0, 2 * math.pi, 1.0, 1.0])


def test_images_are_binary_64x64_and_rendered_the_same_bytes_twice():
    index = np.random.default_rng(1).integers(0, len(FULL), 300)
    first = FULL.images(index)
    assert first.shape == (300, 1, 64, 64) and first.dtype == np.float32
    assert set(np.unique(first).tolist()) == {0.0, 1.0}
    shapes._sprite_bank.cache_clear()  # draw every sprite again from the geometry
    second = FULL.images(index)
    assert first.tobytes() == second.tobytes()
    assert (first.reshape(300, -1).sum(1) > 0).all()  # every image shows its sprite


def test_every_sprite_lies_inside_its_patch_so_no_image_crops_its_shape():
    bank = shapes._sprite_bank(6, 40)
    assert not bank[..., 0, :].any() and not bank[..., -1, :].any()
    assert not bank[..., :, 0].any() and not bank[..., :, -1].any()
    corner = FULL.observations(np.array([[s, 5, o, x, y] for s in range(3) for o in (0, 5, 15)
                                         for x in (0, 31) for y in (0, 31)]))
    drawn = corner.reshape(len(corner), -1).sum(1)
    expected = [bank[s, 5, o].sum() for s in range(3) for o in (0, 5, 15) for _ in range(4)]
    assert drawn.tolist() == expected


def centroid(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image[0])
    return float(rows.mean()), float(cols.mean())


def test_the_pixel_centroid_moves_one_pixel_per_position_step():
    base = [1, 3, 7]
    along_x = FULL.observations(np.array([[*base, x, 12] for x in range(32)]))
    along_y = FULL.observations(np.array([[*base, 12, y] for y in range(32)]))
    cx = [centroid(im) for im in along_x]
    cy = [centroid(im) for im in along_y]
    assert np.allclose(np.diff([c[1] for c in cx]), 1.0) and np.allclose([c[0] for c in cx], cx[0][0])
    assert np.allclose(np.diff([c[0] for c in cy]), 1.0) and np.allclose([c[1] for c in cy], cy[0][1])


def test_scale_grows_the_area_and_orientation_turns_the_sprite():
    areas = FULL.observations(np.array([[0, s, 0, 16, 16] for s in range(6)])).sum((1, 2, 3))
    assert (np.diff(areas) > 0).all()
    turns = FULL.observations(np.array([[1, 5, o, 16, 16] for o in (0, 10, 39)]))
    assert (turns[0] != turns[1]).any()
    assert (turns[0] == turns[2]).all()  # 0 and 2 pi both on the grid, as in dSprites
    kinds = FULL.observations(np.array([[s, 5, 0, 16, 16] for s in range(3)]))
    assert len({im.tobytes() for im in kinds}) == 3


def test_the_named_dataset_carries_shape_labels_and_factor_labels():
    d = data.load("shapes-small", limit=96)
    assert d.train.shape == (96, 1, 64, 64) and len(d.val) == 1000 and len(d.test) == 2000
    assert d.info.class_names == ["square", "ellipse", "heart"]
    for split, x, labels in (("train", d.train, d.train_labels), ("test", d.test, d.test_labels)):
        f = shapes.factors(d, split)
        assert f.shape == (len(x), 5)
        assert (labels.numpy() == f[:, 0]).all()
        assert (SMALL.observations(f[:50]) == x[:50].numpy()).all()
    assert set(shapes.factors(d, "train")[:, 0].tolist()) == {0, 1, 2}  # limit keeps a random subset of the grid
    splits = [set(SMALL.split_grid_indices(s).tolist()) for s in ("val", "test")]
    assert not splits[0] & splits[1] and not splits[1] & set(SMALL.index(shapes.factors(d, "train")).tolist())


def test_a_split_too_large_for_memory_is_refused_with_the_limit_to_use(monkeypatch):
    monkeypatch.setattr(shapes, "MEMORY_SHARE", 10**12)
    with pytest.raises(VaekitError, match="--limit"):
        data.load("shapes-small")


def test_bad_factor_input_and_other_datasets_are_one_line_errors(tiny_digits):
    with pytest.raises(VaekitError, match="integers"):
        SMALL.observations(np.zeros((2, 5)))
    with pytest.raises(VaekitError, match="out of range"):
        SMALL.observations(np.array([[0, 0, 10, 0, 0]]))
    with pytest.raises(VaekitError, match="not a shapes dataset"):
        shapes.factors(tiny_digits, "test")
