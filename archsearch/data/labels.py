"""Label files and the tables that turn their raw values into train ids.

Every dataset maps all 256 possible 8-bit label values through one table, so
remapping is a single numpy indexing operation per image and values a dataset does
not define can never leak into training as a class.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from archsearch.errors import SpecError

IGNORE_INDEX = 255
"""Train id of pixels that count for neither loss nor metric."""


def lookup_table(mapping: Mapping[int, int]) -> np.ndarray:
    """A 256-entry table sending each key of ``mapping`` to its value and everything else to ignore."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for raw_value, train_id in mapping.items():
        table[raw_value] = train_id
    return table


def identity_table(num_classes: int) -> np.ndarray:
    """A table for label files that already hold train ids ``0..num_classes-1``."""
    return lookup_table({train_id: train_id for train_id in range(num_classes)})


class ColourTable:
    """Turns colour-coded label images (RGB) into train ids: each listed colour to its id, every
    other colour to the ignore index."""

    def __init__(self, colours: Mapping[tuple[int, int, int], int]) -> None:
        keys = np.array([(red << 16) | (green << 8) | blue for red, green, blue in colours], dtype=np.int64)
        order = np.argsort(keys)
        self.keys = keys[order]
        self.train_ids = np.array(list(colours.values()), dtype=np.uint8)[order]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        position = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[position] == keys, self.train_ids[position], IGNORE_INDEX).astype(np.uint8)


def decode_label(path: Path, lookup: np.ndarray | ColourTable) -> np.ndarray:
    """The train ids of one label file: index PNGs through a 256-entry table, colour PNGs through a ColourTable."""
    if not isinstance(lookup, ColourTable):
        return lookup[read_label(path)]
    with open_image(path) as label:
        try:
            return lookup(np.asarray(label.convert("RGB")))
        except IMAGE_ERRORS as error:
            raise unreadable(path, error) from None


IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)
"""What PIL raises for a file that is not a readable image (SyntaxError: a broken PNG chunk)."""


def unreadable(path: Path, error: BaseException) -> SpecError:
    if isinstance(error, UnidentifiedImageError):
        message = "not an image file, or in a format PIL cannot read"
    else:
        message = " ".join(str(error).split()) or type(error).__name__
    return SpecError(f"cannot read the image ({message})", path=str(path), allowed="a readable PNG or JPEG file")


def open_image(path: Path) -> Image.Image:
    """``Image.open``, with an unreadable or missing file as a SpecError naming it."""
    try:
        return Image.open(path)
    except IMAGE_ERRORS as error:
        raise unreadable(path, error) from None


def read_label(path: Path) -> np.ndarray:
    """Read a label PNG as its raw 8-bit values; palette PNGs give palette indices, not colours."""
    with open_image(path) as label:
        if label.mode not in ("L", "P"):
            raise SpecError("label file is not a single-channel index image", path=str(path),
                            value=label.mode, allowed="8-bit grayscale (L) or palette (P) PNG")
        try:
            return np.asarray(label)
        except IMAGE_ERRORS as error:
            raise unreadable(path, error) from None
