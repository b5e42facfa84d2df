"""Pixel conversions and image files, shared by training, export and inference.

Models see RGB float images in [-1, 1]: ``x = pixel / 127.5 - 1``. This module is
the one place that maps between that range and 8-bit RGB pixels.
"""

from __future__ import annotations

import os

import cv2
import numpy as np


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] float → uint8 pixels (rounded, clipped)."""
    return np.clip(np.round((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [-1, 1]."""
    return np.asarray(pixels, np.float32) / 127.5 - 1.0


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB (or single-channel) uint8 image; the folder is created if needed.

    The file appears atomically (encoded in memory, written to a temporary name, then
    renamed), so an interrupted write never leaves a truncated image behind.
    """
    from tfface.fileio import atomic_write

    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    img = rgb if rgb.ndim == 2 or rgb.shape[-1] == 1 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ext = os.path.splitext(path)[1] or ".png"
    try:
        ok, buf = cv2.imencode(ext, img)
    except cv2.error as e:
        raise OSError(f"could not encode image '{path}': {e}") from e
    if not ok:
        raise OSError(f"could not encode image '{path}'")
    atomic_write(path, buf.tobytes(), fsync=False)
