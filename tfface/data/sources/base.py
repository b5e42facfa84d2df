"""What every clean-face source shares: the element contract, splits, errors.

:class:`FaceSource` is the base class; :func:`_train_item_stream` the reproducible,
resumable train order the folder and synthetic sources use (see
:mod:`tfface.data.sources`). The landmarks of aligned faces are :mod:`tfface.framing`.
"""

from __future__ import annotations

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)

import cv2
import numpy as np
import tensorflow as tf

from tfface.config import DataConfig

SPLITS = ("train", "eval")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
"""File extensions :class:`FolderSource` reads (case-insensitive)."""


class SourceError(ValueError):
    """A face source cannot be used; the message says why and how to fix it."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise SourceError(f"split must be one of {SPLITS}, got {split!r}")


def _resize_square_np(img: np.ndarray, size: int) -> np.ndarray:
    """Center-crop an HxWxC uint8 array to a square and resize it to ``size``."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = img[y0 : y0 + s, x0 : x0 + s]
    if s > size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    elif s < size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def _train_item_stream(n: int, seed: int, start: int, shuffle: bool) -> tf.data.Dataset:
    """Infinite ``(index, item)`` stream over items ``0..n-1``, one permutation per epoch.

    Epoch ``e`` is ``stateless_shuffle(range(n), seed=[seed, e])``; element ``i`` of the
    stream is item ``perm_{i // n}[i % n]`` and carries ``index = i``. Starting at
    ``start`` only slices the first permutation, so it costs nothing per skipped item.
    """
    if n < 1:
        raise SourceError("cannot build a training stream over zero items")
    if start < 0:
        raise SourceError(f"start must be >= 0, got {start}")
    first_epoch, offset = divmod(int(start), int(n))
    seed = int(seed)

    def epoch_items(epoch: tf.Tensor) -> tf.data.Dataset:
        items = tf.range(n, dtype=tf.int64)
        if shuffle:
            items = tf.random.experimental.stateless_shuffle(
                items, seed=tf.stack([tf.constant(seed, tf.int64), epoch])
            )
        skip = tf.where(epoch == first_epoch, tf.constant(offset, tf.int64), 0)
        return tf.data.Dataset.from_tensor_slices(items[skip:])

    items = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_items)
    return tf.data.Dataset.zip((tf.data.Dataset.counter(start=int(start)), items))


def _keep_indices(ds: tf.data.Dataset, keep) -> tf.data.Dataset:
    """``ds`` of ``(index, ...)`` pairs without the elements whose index ``keep`` rejects."""
    if keep is None:
        return ds
    return ds.filter(lambda index, _: keep(index))


def _tf_square_resize(img: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Center-crop and resize in-graph; returns (uint8 image, crop offset xy, crop side)."""
    shape = tf.shape(img)
    h, w = shape[0], shape[1]
    s = tf.minimum(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0 : y0 + s, x0 : x0 + s, :3]
    method = tf.cond(s > size, lambda: tf.constant(0), lambda: tf.constant(1))
    out = tf.switch_case(
        method,
        [
            lambda: tf.image.resize(crop, (size, size), method="area"),
            lambda: tf.image.resize(crop, (size, size), method="bicubic"),
        ],
    )
    out = tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)
    out.set_shape((size, size, 3))
    offset = tf.cast(tf.stack([x0, y0]), tf.float32)
    return out, offset, tf.cast(s, tf.float32)


class FaceSource:
    """Base class of the clean-face sources.

    Attributes:
        name: short name of the source (``folder``, ``tfds``, ``synthetic``).
        synthetic: True when the faces are not real photos (model cards must say so).
    """

    name: str = "base"
    synthetic: bool = False

    def __init__(self, data_cfg: DataConfig):
        self.cfg = data_cfg
        self.image_size = int(data_cfg.image_size)

    def num_examples(self, split: str) -> int | None:
        """Number of distinct elements of ``split`` (train: one epoch), None if unknown."""
        raise NotImplementedError

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        """The ``split`` stream; see the module docstring for the exact contract.

        ``keep``: optional ``fn(index) -> bool tensor``; elements whose index it
        rejects are dropped *before* they are read or decoded (a worker of a
        multi-worker run reads only its own shard, :mod:`tfface.train.distributed`).
        """
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs and model cards."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"
