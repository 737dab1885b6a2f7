"""User data from a path: picks the reader by what the path is (folder) or its extension."""

from __future__ import annotations

from pathlib import Path

from vaekit.data.arrays import read_array_file
from vaekit.data.config import DataConfig
from vaekit.data.images import IMAGE_EXTENSIONS, read_image_folder
from vaekit.data.parts import Parts
from vaekit.data.tables import TABLE_SUFFIXES, read_table
from vaekit.errors import VaekitError

ARRAY_SUFFIXES = (".npy", ".npz")
SUPPORTED = "an image folder, .npy, .npz, .csv, .tsv, .csv.gz, .tsv.gz or .parquet"


def read_path(path: Path, config: DataConfig, shape: tuple[int, ...] | None = None) -> Parts:
    """Decode the data at ``path``; ``shape`` forces the image shape (C, H, W) of a trained model."""
    if path.is_dir():
        return read_image_folder(path, image_size=config.image_size, channels=config.channels, shape=shape)
    name = path.name.lower()
    if name.endswith(ARRAY_SUFFIXES):
        return read_array_file(path)
    if name.endswith(TABLE_SUFFIXES):
        return read_table(path, config.label_column)
    if name.endswith(IMAGE_EXTENSIONS):
        raise VaekitError(f"'{path}' is a single image; give the folder that holds the images instead")
    raise VaekitError(f"unsupported file type '{path.name}' (supported: {SUPPORTED})")
