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
