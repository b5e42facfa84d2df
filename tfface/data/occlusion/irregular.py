"""Irregular holes from a folder of mask images (NVIDIA irregular mask layout)."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import cv2
import numpy as np

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.core import (MaskFn, Occluder, _check_options, _fill_for, _randint,
                                        _split, register_occlusion)
from tfface.fileio import display_name, regular_file_problem

IRREGULAR_BIN_WIDTH = 0.1
"""Hole-area bins of the irregular masks: bin ``k`` holds fractions in ``[k/10, (k+1)/10)``
(NVIDIA's test set has bins 0–5: 0–10 %, …, 50–60 %)."""
IRREGULAR_DEFAULTS: dict[str, Any] = {
    "bins": [0, 1, 2, 3, 4, 5],
    "flip": True,
    "rotate": 180.0,
    "scale": [0.8, 1.25],
}
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def load_mask_bank(mask_dir: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a folder of hole masks (NVIDIA irregular mask layout: 8-bit images, white =
    hole) once, resized to ``size`` (nearest neighbour).

    Returns:
        ``(masks uint8 [N, size, size] in {0, 1}, hole fractions float32 [N], file names)``,
        sorted by file name; masks without any hole pixel are left out.

    Raises:
        ValueError: the folder is missing, holds no mask images, or an image cannot
            be decoded (the message names the folder or the file).
    """
    if not mask_dir or not os.path.isdir(mask_dir):
        raise ValueError(f"mask folder '{mask_dir}' does not exist or is not a folder")
    files = sorted(
        f for f in os.listdir(mask_dir) if f.lower().endswith(MASK_EXTENSIONS) and not f.startswith(".")
    )
    if not files:
        raise ValueError(
            f"mask folder '{mask_dir}' holds no mask images ({'/'.join(MASK_EXTENSIONS)}); "
            f"expected NVIDIA irregular masks (white = hole)"
        )
    masks, fracs, names = [], [], []
    for f in files:
        path = os.path.join(mask_dir, f)
        odd = regular_file_problem(path)  # a named pipe would block imread forever
        if odd:
            raise ValueError(f"mask folder '{mask_dir}': '{display_name(f)}' is unusable ({odd})")
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None or img.ndim != 2 or min(img.shape) < 8:
            raise ValueError(f"mask folder '{mask_dir}': cannot read '{f}' as a mask image")
        # Nearest neighbour (as NVIDIA advises): area averaging + threshold would erase the
        # thin strokes of small masks when downscaling.
        m = cv2.resize(
            (img > 127).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST_EXACT
        )
        if m.any():
            masks.append(m)
            fracs.append(m.mean())
            names.append(f)
    if not masks:
        raise ValueError(f"mask folder '{mask_dir}': no mask has a hole (white pixels)")
    return np.stack(masks), np.asarray(fracs, np.float32), names


def _affine_transform(m, flip, k, angle, scale, size: int, fill_mode: str, interpolation: str):
    """Warp ``m`` ``[S, S, C]`` about its center: flip, rotate by ``k·90° + angle``, scale."""
    theta = tf.cast(k, tf.float32) * (math.pi / 2) + angle
    c, s = tf.cos(theta) / scale, tf.sin(theta) / scale
    f = tf.where(flip, -1.0, 1.0)
    # output → input: in = ctr + A (out - ctr), A = F · R(theta) / scale
    a00, a01, a10, a11 = f * c, -f * s, s, c
    ctr = (size - 1) / 2.0
    t = tf.stack([a00, a01, ctr - a00 * ctr - a01 * ctr, a10, a11, ctr - a10 * ctr - a11 * ctr, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=m[None], transforms=t[None], output_shape=[size, size], fill_value=0.0,
        interpolation=interpolation, fill_mode=fill_mode,
    )
    return out[0]


def irregular_from_bank(bank: tf.Tensor, bin_start, bin_count, bin_lo, bin_hi, *, flip=True,
                        rotate=180.0, scale=(0.8, 1.25)) -> MaskFn:
    """Mask function over a loaded bank (``uint8 [N, S, S]``, sorted by area bin).

    Per element: a bin uniformly among the selected ones, a mask uniformly in it,
    then a random horizontal flip, a rotation by a multiple of 90° (both exact),
    and a rotation by ``U(-rotate, rotate)`` degrees and a log-uniform scale in
    ``scale`` (bilinear, reflected at the border, thresholded at half). If the
    continuous warp moves the hole fraction out of the mask's bin, the exact
    flip/rot90 version is used instead, so every mask stays in its bin.
    """
    bin_start = tf.constant(bin_start, tf.int32)
    bin_count = tf.constant(bin_count, tf.int32)
    bin_lo, bin_hi = tf.constant(bin_lo, tf.float32), tf.constant(bin_hi, tf.float32)
    nbins = int(bin_start.shape[0])
    lo_s, hi_s = math.log(float(scale[0])), math.log(float(scale[1]))

    def fn(seed, size: int, landmarks) -> tf.Tensor:
        del landmarks
        if bank.shape[1] != size:
            raise ValueError(f"irregular: the mask bank is {bank.shape[1]} px, asked for {size}")
        s_bin, s_pick, s_flip, s_k, s_ang, s_scale = _split(seed, 6)
        b = _randint([], s_bin, 0, nbins - 1)
        u = tf.random.stateless_uniform([], s_pick)
        idx = bin_start[b] + tf.minimum(
            tf.cast(u * tf.cast(bin_count[b], tf.float32), tf.int32), bin_count[b] - 1
        )
        m = tf.cast(tf.gather(bank, idx), tf.float32)[:, :, None]
        do_flip = flip & (tf.random.stateless_uniform([], s_flip) < 0.5)
        k = _randint([], s_k, 0, 3)
        exact = tf.image.rot90(tf.where(do_flip, tf.reverse(m, [1]), m), k)
        if rotate == 0 and scale[0] == scale[1] == 1:
            return exact
        ang = tf.random.stateless_uniform([], s_ang, -1.0, 1.0) * (float(rotate) * math.pi / 180)
        sc = tf.exp(tf.random.stateless_uniform([], s_scale, lo_s, hi_s)) if hi_s > lo_s else tf.constant(math.exp(lo_s))
        # flip and k·90° first (exact), then the continuous part on top of it.
        warped = _affine_transform(exact, tf.constant(False), 0, ang, sc, size, "REFLECT", "BILINEAR")
        warped = tf.cast(warped > 0.5, tf.float32)
        area = tf.reduce_mean(warped)
        ok = (area >= bin_lo[b]) & (area < bin_hi[b]) & (area > 0)
        return tf.where(ok, warped, exact)

    return fn


def _irregular_factory(options: Mapping[str, Any], data_cfg) -> Occluder:
    _check_options("irregular", options, set(IRREGULAR_DEFAULTS) | {"fill"})
    opts = {**IRREGULAR_DEFAULTS, **options}
    mask_dir = getattr(data_cfg, "mask_dir", None)
    if not mask_dir:
        raise ValueError(
            "occlusion generator 'irregular' needs a folder of hole masks (NVIDIA irregular "
            "mask layout, white = hole): set data.mask_dir (--mask-dir DIR)"
        )
    size = int(data_cfg.image_size)
    masks, fracs, _ = load_mask_bank(mask_dir, size)
    bins = sorted({int(b) for b in opts["bins"]})
    if not bins or min(bins) < 0 or max(bins) > 9:
        raise ValueError(f"irregular: bins must be a non-empty list of 0..9, got {opts['bins']}")
    which = np.minimum((fracs / IRREGULAR_BIN_WIDTH).astype(np.int64), 9)
    order, starts, counts, los, his = [], [], [], [], []
    for b in bins:
        ids = np.nonzero(which == b)[0]
        if not len(ids):
            have = sorted(set(which.tolist()))
            raise ValueError(
                f"mask folder '{mask_dir}' has no mask in area bin {b} "
                f"({b * 10}-{(b + 1) * 10} % at {size} px); bins present: {have}"
            )
        starts.append(len(order))
        counts.append(len(ids))
        order.extend(ids.tolist())
        los.append(b * IRREGULAR_BIN_WIDTH)
        his.append((b + 1) * IRREGULAR_BIN_WIDTH if b < 9 else 1.01)
    scale = [float(s) for s in opts["scale"]]
    if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
        raise ValueError(f"irregular: scale must be [lo, hi] with 0 < lo <= hi, got {opts['scale']}")
    with tf.init_scope():
        bank = tf.constant(masks[np.asarray(order)])
    fn = irregular_from_bank(
        bank, starts, counts, los, his, flip=bool(opts["flip"]), rotate=float(opts["rotate"]),
        scale=scale,
    )
    return Occluder(fn, _fill_for("irregular", options, None))


@register_occlusion("irregular", id=5, factory=_irregular_factory)
def irregular(seed, size: int, landmarks) -> tf.Tensor:
    """Irregular holes from a folder of mask images (NVIDIA irregular mask dataset:
    white = hole), flipped/rotated/scaled, selectable by area bin. Needs a folder:
    build it with :func:`make_occlusion_fns` (``data.mask_dir``)."""
    raise ValueError(
        "occlusion generator 'irregular' needs a folder of hole masks: set data.mask_dir "
        "(--mask-dir DIR) and build the generators with make_occlusion_fns(data_cfg)"
    )
