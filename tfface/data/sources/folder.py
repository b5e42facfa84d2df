"""The folder source: face photos found recursively under a folder."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Callable, Sequence

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)

import numpy as np
import tensorflow as tf

from tfface.config import DataConfig
from tfface.data.sources.base import (IMAGE_EXTENSIONS, SPLITS, FaceSource, SourceError,
                                      _check_split, _keep_indices, _resize_square_np,
                                      _train_item_stream)
from tfface.data.sources.scan import (SKIP_REASONS, _decode_image_bytes, _write_scan_log,
                                      scan_folder)
from tfface.fileio import open_regular
from tfface.framing import framing_landmarks

logger = logging.getLogger(__name__)

# A fixed key for the folder train/eval split: the split must not move when the user
# changes data.seed, otherwise eval faces would leak into training across runs.
_FOLDER_SPLIT_KEY = b"tfface-folder-split-v1"
_EVAL_FRACTION_CAP = 0.10


def _decoded_ok(element, ok):
    """Keep elements whose file decoded (named, not a lambda: AutoGraph needs the source)."""
    return ok


def _element_only(element, ok):
    return element


class FolderSource(FaceSource):
    """Face photos found recursively under a folder (jpg, jpeg, png, webp, bmp).

    Files are listed and sorted once, then split by a fixed hash of their relative path
    (independent of ``data.seed``, so eval faces never leak into training across runs):
    the eval split is ``min(eval_count, 10% of the files)`` files (at least one when
    there are two or more), the rest is train. A folder with a single image uses it
    for both and warns.

    The scan (:func:`scan_folder`) reads each file's header and last bytes, never the
    whole image: zero-byte, unreadable, non-image, corrupt, truncated, too small
    (shorter side below ``data.min_image_side``, default half the image size) and too
    large files are skipped; grayscale, transparent, 16-bit, CMYK and palette images
    are converted; JPEGs above :data:`MAX_DECODE_PIXELS` are decoded at reduced size.
    One warning sums it up per reason and names a log file with one line per file
    (``folder_scan.log`` in ``log_dir``, e.g. the run directory; a temporary folder
    otherwise). Symbolic-link loops and folders that cannot be read are reported, not
    followed. A file that still fails to decode is dropped from the stream (its
    ``index`` is skipped) with a warning, so a bad file never stops training; when no
    file of a split decodes at all, reading it raises :class:`SourceError` instead of
    waiting forever. Landmarks are :data:`CANONICAL_LANDMARKS` (photos are assumed
    aligned).
    """

    name = "folder"
    synthetic = False

    def __init__(self, data_cfg: DataConfig, *, log_dir: str | None = None,
                 held_out: bool = False):
        super().__init__(data_cfg)
        self.held_out = bool(held_out)
        if not data_cfg.data_dir:
            raise SourceError("the folder source needs a folder: pass --data-dir DIR")
        root = os.path.abspath(os.path.expanduser(str(data_cfg.data_dir)))
        exts = ", ".join(IMAGE_EXTENSIONS)
        if not os.path.isdir(root):
            raise SourceError(
                f"face folder '{root}' does not exist or is not a folder "
                f"(expected a folder of face photos: {exts}, searched recursively)"
            )
        self.root = root
        self.face_framing = getattr(data_cfg, "face_framing", "celeba")
        framing_landmarks(self.face_framing)  # refuse an unknown framing before scanning
        min_side = data_cfg.min_image_side
        self.min_side = int(self.image_size // 2 if min_side is None else min_side)
        scan = scan_folder(root, self.image_size, self.min_side)
        self.scan = scan
        if not scan.candidates:
            extra = ""
            if scan.folder_problems:
                where, why = scan.folder_problems[0]
                extra = f"; {len(scan.folder_problems)} folder(s) could not be scanned " \
                        f"(e.g. {where}: {why})"
            raise SourceError(
                f"no images found in '{root}' (searched recursively for {exts}, "
                f"case-insensitive{extra})"
            )
        if scan.summary() is not None:
            _write_scan_log(scan, log_dir)
            logger.warning(scan.summary())
        good = scan.usable
        if not good:
            why = ", ".join(f"{len(v)} {SKIP_REASONS[k]}" for k, v in scan.skipped.items() if v)
            raise SourceError(
                f"no usable image in '{root}': none of the {scan.candidates} files with an "
                f"image extension ({exts}) could be read as a usable image ({why})"
                + (f"; see {scan.log_path}" if scan.log_path else "")
                + (f". Lower data.min_image_side (now {self.min_side} px) to use small "
                   "images" if scan.skipped.get("too-small") else "")
            )
        self.skipped_files = scan.skipped_files
        self._reduce = {os.path.join(root, r): f for r, f in scan.reduce.items()}
        # Fixed pseudo-random order: sort by a keyed hash of the relative path. Adding
        # files to the folder does not move existing files between the splits much.
        order = sorted(
            good,
            key=lambda r: hashlib.blake2b(
                r.replace(os.sep, "/").encode("utf-8"), key=_FOLDER_SPLIT_KEY, digest_size=8
            ).digest(),
        )
        n = len(order)
        if self.held_out:
            # A folder no model trained on (e.g. faces of other people): all of it is
            # eval, in the same fixed order, up to eval_count faces; no train split.
            self.train_files, self.eval_files = [], order[: max(1, int(data_cfg.eval_count))]
        elif n == 1:
            logger.warning(
                "FolderSource: '%s' holds a single image; it is used for both the train and "
                "the eval split, so eval metrics are meaningless",
                root,
            )
            self.train_files, self.eval_files = order, order
        else:
            n_eval = max(1, min(int(data_cfg.eval_count), int(n * _EVAL_FRACTION_CAP)))
            self.train_files, self.eval_files = order[: n - n_eval], order[n - n_eval :]
        self._failed: set[str] = set()
        self._failed_in: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return (
            f"folder '{self.root}' ({len(self.train_files)} train, "
            f"{len(self.eval_files)} eval images)"
        )

    def num_examples(self, split: str) -> int | None:
        _check_split(split)
        return len(self.train_files if split == "train" else self.eval_files)

    def _decode_np(self, path: bytes, split_id: np.int64) -> tuple[np.ndarray, np.bool_]:
        size = self.image_size
        p = path.decode("utf-8", "replace")
        why = "not decodable"
        try:  # read here, not with tf.io.read_file: a file removed, locked or replaced by
            with open_regular(p) as f:  # a pipe since the scan must skip, not stop training
                data = f.read()
            img = _decode_image_bytes(data, p.lower().endswith((".jpg", ".jpeg")),
                                      self._reduce.get(p, 1))
        except OSError as e:
            img, why = None, f"unreadable: {e.strerror or type(e).__name__}"
        if img is None:
            with self._lock:
                first = p not in self._failed
                self._failed.add(p)
                count = len(self._failed)
                split = SPLITS[int(split_id)]
                failed_split = self._failed_in.setdefault(split, set())
                failed_split.add(p)
                n_split = self.num_examples(split)
                all_failed = len(failed_split) >= n_split
            if first:
                logger.warning(
                    "FolderSource: could not decode '%s' (%s); skipped (%d undecodable "
                    "file(s) so far)", p, why, count,
                )
            if all_failed:
                # Every file of the split failed: filtering them out would wait forever.
                raise SourceError(
                    f"none of the {n_split} files of the {split} split of '{self.root}' "
                    "could be decoded; check the folder (see the warnings above)"
                )
            return np.zeros((size, size, 3), np.uint8), np.bool_(False)
        return _resize_square_np(img, size), np.bool_(True)

    def _load(self, files: Sequence[str], split: str = "train") -> Callable:
        paths = tf.constant([os.path.join(self.root, f) for f in files])
        size = self.image_size
        split_id = tf.constant(SPLITS.index(split), tf.int64)
        landmarks = tf.constant(framing_landmarks(self.face_framing))

        def load(index, item):
            path = tf.gather(paths, item)
            img, ok = tf.numpy_function(
                self._decode_np, [path, split_id], (tf.uint8, tf.bool), stateful=False
            )
            img.set_shape((size, size, 3))
            ok.set_shape(())
            return {"image": img, "landmarks": landmarks, "index": index}, ok

        return load

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        _check_split(split)
        if split == "train":
            files = self.train_files
            if self.held_out:
                raise SourceError(f"'{self.root}' is read as a held-out folder (all eval); "
                                  "it has no train split")
            ds = _train_item_stream(len(files), self.cfg.seed, start, self.cfg.shuffle_files)
        else:
            files = self.eval_files
            ds = tf.data.Dataset.range(len(files)).map(lambda i: (i, i))
        ds = _keep_indices(ds, keep)
        ds = ds.map(self._load(files, split), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        return ds.filter(_decoded_ok).map(_element_only)
