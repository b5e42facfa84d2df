"""Scoring restorations against ground truth, next to classical baselines.

One implementation serves the TFLite validation harness and evaluation of runs: a
``restore`` callable (Keras model, ``.tflite`` runner, or a baseline) is applied to
eval batches, and every image is scored as 8-bit RGB (see :mod:`tfface.metrics`):

* PSNR, SSIM, MS-SSIM and L1 over the whole image;
* for inpainting, PSNR and SSIM inside the hole only (the pixels the model had to
  invent), grouped by occlusion generator and by hole-area bin (0–10 %, …, 50–60 %);
* the baselines on the same inputs: the untouched damaged input, and OpenCV
  inpainting given the true mask (Telea and Navier–Stokes, radius 3).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping

import cv2
import numpy as np

import tfface  # noqa: F401
import tensorflow as tf

from tfface import metrics
from tfface.imageio import to_float, to_uint8

AREA_BINS = [(i / 10, (i + 1) / 10) for i in range(6)]
"""Hole-area bins of the NVIDIA irregular-mask convention (fraction of the image)."""

Restore = Callable[[dict[str, np.ndarray]], np.ndarray]


def area_bin(fraction: float) -> str:
    """Label of the hole-area bin holding ``fraction`` (e.g. ``"10-20%"``; ``">60%"``)."""
    for lo, hi in AREA_BINS:
        if lo <= fraction < hi or (hi == AREA_BINS[-1][1] and fraction == hi):
            return f"{int(lo * 100)}-{int(hi * 100)}%"
    return ">60%"


def ms_ssim(target: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-image MS-SSIM on 8-bit RGB with as many scales as the image size allows.

    The standard 5 scales need images of at least 176 px (11-px window at 1/16
    size); smaller images use the first 3 or 4 standard weights, renormalized.
    """
    size = min(target.shape[1:3])
    weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    scales = max(1, min(5, int(np.floor(np.log2(size / 11))) + 1))
    w = np.array(weights[:scales]) / np.sum(weights[:scales])
    return tf.image.ssim_multiscale(
        metrics.to_uint8_levels(target), metrics.to_uint8_levels(pred), 255.0,
        power_factors=w.tolist(),
    ).numpy()


def hole_scores(target: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR and SSIM restricted to hole pixels (``mask == 1``).

    SSIM inside the hole averages the SSIM map over hole pixels; images without a
    hole get NaN (left out of means).
    """
    t = metrics.to_uint8_levels(target).numpy()
    p = metrics.to_uint8_levels(pred).numpy()
    m = np.broadcast_to(mask > 0.5, t.shape)
    n = m.reshape(len(t), -1).sum(1)
    se = ((t - p) ** 2 * m).reshape(len(t), -1).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = se / n
        psnr = np.where(n > 0, np.minimum(10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), 100.0), np.nan)
    ssim_map = _ssim_map(t, p)
    hm = m[:, 5:-5, 5:-5, :1].astype(np.float32)  # the SSIM map's valid window
    with np.errstate(divide="ignore", invalid="ignore"):
        ssim = (ssim_map * hm).reshape(len(t), -1).sum(1) / hm.reshape(len(t), -1).sum(1)
    return psnr, np.where(n > 0, ssim, np.nan)


def _ssim_map(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """SSIM map (channel mean) with an 11×11 Gaussian window (σ 1.5), 'valid' borders."""
    g = cv2.getGaussianKernel(11, 1.5)
    win = (g @ g.T).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for a, b in zip(t.astype(np.float64), p.astype(np.float64)):
        def f(x):
            return cv2.filter2D(x, -1, win, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]
        mu_a, mu_b = f(a), f(b)
        saa, sbb, sab = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
        s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
        out.append(s.mean(-1, keepdims=True))
    return np.stack(out)


def opencv_inpaint(method: str = "ns", radius: int = 3) -> Restore:
    """Baseline restorer: OpenCV inpainting given the true mask (``telea`` or ``ns``)."""
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]

    def restore(batch: Mapping[str, np.ndarray]) -> np.ndarray:
        out = []
        for img, m in zip(batch["occluded"], batch["mask"]):
            u8 = to_uint8(img)
            hole = (m[..., 0] > 0.5).astype(np.uint8) * 255
            out.append(to_float(cv2.inpaint(u8, hole, radius, flag)))
        return np.stack(out)

    return restore


def damaged_input(batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Baseline 'restorer' that returns the damaged input unchanged."""
    return batch["occluded"]


def score_batch(batch: Mapping[str, np.ndarray], pred: np.ndarray) -> list[dict[str, Any]]:
    """Per-image scores of one restored batch (inpainting)."""
    target = batch["clean"]
    rows = []
    psnr = metrics.psnr(target, pred).numpy()
    ssim = metrics.ssim(target, pred).numpy()
    l1 = metrics.l1(target, pred).numpy()
    msssim = ms_ssim(target, pred)
    hp, hs = hole_scores(target, pred, batch["mask"])
    area = batch["mask"].reshape(len(target), -1).mean(1)
    for i in range(len(target)):
        rows.append({
            "psnr": float(psnr[i]), "ssim": float(ssim[i]), "ms_ssim": float(msssim[i]),
            "l1": float(l1[i]), "hole_psnr": float(hp[i]), "hole_ssim": float(hs[i]),
            "hole_area": float(area[i]), "bin": area_bin(float(area[i])),
            "occlusion": int(batch["occlusion"][i]) if "occlusion" in batch else -1,
            "index": int(batch["index"][i]) if "index" in batch else i,
        })
    return rows


METRIC_KEYS = ("psnr", "ssim", "ms_ssim", "l1", "hole_psnr", "hole_ssim")


def summarize(rows: list[dict[str, Any]], occlusion_names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Mean of each metric overall, per occlusion generator and per hole-area bin."""
    def mean(rs):
        out = {"images": len(rs)}
        for k in METRIC_KEYS:
            vals = [r[k] for r in rs if not np.isnan(r[k])]
            out[k] = float(np.mean(vals)) if vals else None
        return out

    by_occ: dict[str, list] = defaultdict(list)
    by_bin: dict[str, list] = defaultdict(list)
    for r in rows:
        name = (occlusion_names or {}).get(r["occlusion"], str(r["occlusion"]))
        by_occ[name].append(r)
        by_bin[r["bin"]].append(r)
    return {
        "overall": mean(rows),
        "by_occlusion": {k: mean(v) for k, v in sorted(by_occ.items())},
        "by_area_bin": {k: mean(v) for k, v in sorted(by_bin.items())},
    }


def evaluate(
    restorers: Mapping[str, Restore],
    batches: Iterable[Mapping[str, np.ndarray]],
    *,
    baselines: bool = True,
) -> dict[str, dict[str, Any]]:
    """Score every restorer (and the baselines) on the same inpainting batches.

    Returns ``{name: summary}`` (see :func:`summarize`), baselines named
    ``input``, ``opencv_telea`` and ``opencv_ns``.
    """
    from tfface.data.occlusion import OCCLUSION_IDS

    names = {v: k for k, v in OCCLUSION_IDS.items()}
    all_restorers = dict(restorers)
    if baselines:
        all_restorers.update(input=damaged_input, opencv_telea=opencv_inpaint("telea"),
                             opencv_ns=opencv_inpaint("ns"))
    rows: dict[str, list] = {k: [] for k in all_restorers}
    for batch in batches:
        batch = {k: np.asarray(v) for k, v in batch.items()}
        for name, fn in all_restorers.items():
            rows[name].extend(score_batch(batch, np.asarray(fn(batch))))
    return {k: summarize(v, names) for k, v in rows.items()}
