"""Scoring restorations against ground truth, next to classical baselines.

One implementation serves the TFLite validation harness and evaluation of runs: a
``restore`` callable (Keras model, ``.tflite`` runner, or a baseline) is applied to
eval batches, and every image is scored as 8-bit RGB (see :mod:`tfface.metrics`):

* PSNR, SSIM, MS-SSIM and L1 over the whole image;
* for inpainting, PSNR and SSIM inside the hole only (the pixels the model had to
  invent), grouped by occlusion generator and by hole-area bin (0–10 %, …, 50–60 %);
* the remnants, for any restorer (blind ones above all): the fraction of the true hole
  still showing the occluder (output within 12 levels of the damaged input) and the
  fraction of clean pixels changed by more than 12 levels (:func:`hole_remnant`,
  :func:`clean_changed`);
* the baselines on the same inputs: the untouched damaged input, and OpenCV
  inpainting given the true mask (Telea and Navier–Stokes, radius 3).

Super-resolution batches (an ``lr`` input) are scored the same way on RGB, plus the
SR literature's convention: PSNR and SSIM on the BT.601 luma Y with ``scale``
pixels cropped from every border (:func:`tfface.metrics.psnr_y`), grouped by
degradation (``none``, ``classic``, ``realesrgan``) and by scale, next to bicubic
upsampling and the untouched input (nearest-neighbour upsampled, what a viewer
shows when it enlarges the small face).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

import tfface  # noqa: F401
import tensorflow as tf

from tfface import metrics
from tfface.imageio import to_float, to_uint8

AREA_BINS = [(i / 10, (i + 1) / 10) for i in range(6)]
"""Hole-area bins of the NVIDIA irregular-mask convention (fraction of the image)."""

Restore = Callable[[dict[str, np.ndarray]], np.ndarray]


def eval_batches(cfg, images: int, batch_size: int = 8, source=None) -> list[dict[str, np.ndarray]]:
    """The first ``images`` faces of the eval split of ``cfg`` as numpy batches
    (``source``: a face source to read instead of the one ``cfg`` names, e.g. a
    held-out :class:`~tfface.data.sources.FolderSource`).

    Super-resolution batches carry a ``degradation`` label (the preset that made
    ``lr``) so scores can be grouped by it.
    """
    from tfface.data.pipeline import make_dataset

    out, seen = [], 0
    for b in make_dataset(cfg, "eval", batch_size=min(batch_size, images), source=source):
        b = {k: v.numpy() for k, v in b.items()}
        take = min(len(b["clean"]), images - seen)
        b = {k: v[:take] for k, v in b.items()}
        if cfg.data.task == "sr":
            b["degradation"] = np.full(take, cfg.data.degradation)
        out.append(b)
        seen += take
        if seen >= images:
            break
    return out


def _op_message(e: Exception) -> str:
    """The readable part of a TensorFlow op error (without its ``{{function_node ...}}``)."""
    import re

    msg = getattr(e, "message", str(e)).splitlines()[0]
    return re.sub(r"\{\{.*?\}\}\s*", "", msg).strip()[:200]


def sr_eval_batches(cfg, images: int, degradations: Sequence[str] | None = None,
                    batch_size: int = 8, source=None) -> list[dict[str, np.ndarray]]:
    """Eval batches of an SR config for each degradation preset in ``degradations``
    (default: the config's own). The same ``images`` clean faces are degraded by each
    preset; presets other than the config's own use their published options.

    Raises:
        ValueError: an unknown degradation preset (the message lists the valid ones).
    """
    import copy

    from tfface.data.degrade import PRESETS

    if cfg.data.task != "sr":
        raise ValueError("degradations apply to super-resolution configs only")
    out = []
    for name in degradations or [cfg.data.degradation]:
        if name not in PRESETS:
            raise ValueError(f"unknown degradation '{name}'; choose from: {', '.join(PRESETS)}")
        c = copy.deepcopy(cfg)
        if name != cfg.data.degradation:
            c.data.degradation, c.data.degradation_options = name, {}
        try:
            out += eval_batches(c, images, batch_size, source)
        except tf.errors.OpError as e:
            raise ValueError(
                f"degradation '{name}' could not be synthesized for {c.data.image_size} px faces "
                f"at x{c.data.scale} ({_op_message(e)}); choose another "
                "degradation or a larger image size") from e
    return out


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


REMNANT_LEVELS = 12
"""Tolerance of the remnant measures, in 8-bit levels (max over R, G, B)."""


def _level_change(occluded: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per pixel, the largest change over R, G, B from the damaged input to the output,
    in 8-bit levels: ``[N, H, W]`` (inputs in [-1, 1], ``[N, H, W, 3]``)."""
    o = metrics.to_uint8_levels(occluded).numpy()
    p = metrics.to_uint8_levels(pred).numpy()
    return np.abs(p - o).max(axis=-1)


def hole_remnant(occluded: np.ndarray, pred: np.ndarray, mask: np.ndarray,
                 levels: int = REMNANT_LEVELS) -> np.ndarray:
    """Per image, the fraction of the true hole (``mask > 0.5``) that still shows the
    occluder: pixels whose output is within ``levels`` of the damaged input (the
    largest change over R, G, B is ``<= levels``). 0 = every hole pixel was replaced;
    1 = the occluder is untouched. NaN for an image without a hole."""
    hole = np.asarray(mask)[..., 0] > 0.5
    kept = (_level_change(occluded, pred) <= levels) & hole
    n = hole.reshape(len(hole), -1).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, kept.reshape(len(hole), -1).sum(1) / n, np.nan)


def clean_changed(occluded: np.ndarray, pred: np.ndarray, mask: np.ndarray,
                  levels: int = REMNANT_LEVELS) -> np.ndarray:
    """Per image, the fraction of the pixels outside the true hole (the clean face,
    where the input is the truth) that the restoration changed by more than ``levels``
    (largest change over R, G, B). NaN for an image that is all hole."""
    clean = ~(np.asarray(mask)[..., 0] > 0.5)
    moved = (_level_change(occluded, pred) > levels) & clean
    n = clean.reshape(len(clean), -1).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, moved.reshape(len(clean), -1).sum(1) / n, np.nan)


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
    sharp = metrics.hole_sharpness(target, pred, batch["mask"]).numpy()
    remnant = hole_remnant(batch["occluded"], pred, batch["mask"])
    changed = clean_changed(batch["occluded"], pred, batch["mask"])
    area = batch["mask"].reshape(len(target), -1).mean(1)
    for i in range(len(target)):
        rows.append({
            "psnr": float(psnr[i]), "ssim": float(ssim[i]), "ms_ssim": float(msssim[i]),
            "l1": float(l1[i]), "hole_psnr": float(hp[i]), "hole_ssim": float(hs[i]),
            "hole_sharpness": float(sharp[i]), "hole_remnant": float(remnant[i]),
            "clean_changed": float(changed[i]), "hole_area": float(area[i]),
            "bin": area_bin(float(area[i])),
            "occlusion": int(batch["occlusion"][i]) if "occlusion" in batch else -1,
            "index": int(batch["index"][i]) if "index" in batch else i,
        })
    return rows


METRIC_KEYS = ("psnr", "ssim", "ms_ssim", "l1", "hole_psnr", "hole_ssim", "hole_sharpness",
               "hole_remnant", "clean_changed")
"""``hole_sharpness``: :func:`tfface.metrics.hole_sharpness` (1.0 = as sharp as the real
face inside the eroded hole). ``hole_remnant`` / ``clean_changed``: :func:`hole_remnant`
and :func:`clean_changed` (fractions; 0 is best for both)."""
REMNANT_KEYS = ("hole_remnant", "clean_changed")
"""The remnant measures: how much of the occluder is left, and how much
of the clean face was changed, at :data:`REMNANT_LEVELS`."""


def _means(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Image count and the mean of each metric in ``keys`` (NaNs left out; None if none)."""
    out: dict[str, Any] = {"images": len(rows)}
    for k in keys:
        vals = [r[k] for r in rows if not np.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def summarize(rows: list[dict[str, Any]], occlusion_names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Mean of each metric overall, per occlusion generator and per hole-area bin."""
    def mean(rs):
        return _means(rs, METRIC_KEYS)

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
    rows_out: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Score every restorer (and the baselines) on the same batches.

    Inpainting batches (``occluded`` + ``mask``): returns ``{name: summary}`` (see
    :func:`summarize`), baselines named ``input``, ``opencv_telea`` and ``opencv_ns``.
    Super-resolution batches (``lr``): summaries of :func:`summarize_sr`, baselines
    ``input`` (nearest-upsampled LR) and ``bicubic``. ``rows_out`` (a dict) receives
    the per-image scores of each restorer.
    """
    from tfface.data.occlusion import OCCLUSION_IDS

    batches = [{k: np.asarray(v) for k, v in b.items()} for b in batches]
    if not batches:
        raise ValueError("no eval batches to score")
    sr = "lr" in batches[0]
    all_restorers = dict(restorers)
    if baselines and sr:
        all_restorers.update(input=nearest_input, bicubic=bicubic)
    elif baselines:
        all_restorers.update(input=damaged_input, opencv_telea=opencv_inpaint("telea"),
                             opencv_ns=opencv_inpaint("ns"))
    score = score_sr_batch if sr else score_batch
    rows: dict[str, list] = {k: [] for k in all_restorers}
    for batch in batches:
        for name, fn in all_restorers.items():
            rows[name].extend(score(batch, np.asarray(fn(batch))))
    if rows_out is not None:
        rows_out.update(rows)
    if sr:
        return {k: summarize_sr(v) for k, v in rows.items()}
    names = {v: k for k, v in OCCLUSION_IDS.items()}
    return {k: summarize(v, names) for k, v in rows.items()}


# -- super-resolution ----------------------------------------------------------------

SR_METRIC_KEYS = ("psnr", "ssim", "ms_ssim", "l1", "psnr_y", "ssim_y", "sharpness")
"""RGB metrics over the whole image; ``*_y`` on luma Y with a ``scale``-pixel border crop;
``sharpness``: :func:`tfface.metrics.sharpness` with the same crop (1.0 = as sharp as the
real face)."""


def sr_scale(batch: Mapping[str, np.ndarray]) -> int:
    """Upscaling factor of an SR batch (HR side over LR side)."""
    return int(batch["clean"].shape[1] // batch["lr"].shape[1])


def nearest_input(batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Baseline 'restorer' of SR: the untouched LR input, enlarged by pixel repetition."""
    s = sr_scale(batch)
    return np.repeat(np.repeat(np.asarray(batch["lr"]), s, axis=1), s, axis=2)


def bicubic(batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Baseline restorer of SR: bicubic upsampling of ``lr`` to the HR size."""
    return metrics.bicubic_upsample(batch["lr"], int(batch["clean"].shape[1])).numpy()


def score_sr_batch(batch: Mapping[str, np.ndarray], pred: np.ndarray) -> list[dict[str, Any]]:
    """Per-image scores of one super-resolved batch: RGB PSNR/SSIM/MS-SSIM/L1 over the
    whole image, and PSNR/SSIM on Y with ``scale`` border pixels cropped."""
    target = batch["clean"]
    scale = sr_scale(batch)
    if pred.shape != target.shape:
        raise ValueError(f"SR output has shape {pred.shape[1:]}, the target {target.shape[1:]}")
    psnr = metrics.psnr(target, pred).numpy()
    ssim = metrics.ssim(target, pred).numpy()
    l1 = metrics.l1(target, pred).numpy()
    msssim = ms_ssim(target, pred)
    py = metrics.psnr_y(target, pred, border=scale).numpy()
    sy = metrics.ssim_y(target, pred, border=scale).numpy()
    sharp = metrics.sharpness(target, pred, border=scale).numpy()
    degr = batch.get("degradation")
    rows = []
    for i in range(len(target)):
        rows.append({
            "psnr": float(psnr[i]), "ssim": float(ssim[i]), "ms_ssim": float(msssim[i]),
            "l1": float(l1[i]), "psnr_y": float(py[i]), "ssim_y": float(sy[i]),
            "sharpness": float(sharp[i]), "scale": scale,
            "degradation": str(degr[i]) if degr is not None else "none",
            "index": int(batch["index"][i]) if "index" in batch else i,
        })
    return rows


def summarize_sr(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each SR metric overall, per degradation and per scale (``x4``)."""
    def mean(rs):
        return _means(rs, SR_METRIC_KEYS)

    by_deg: dict[str, list] = defaultdict(list)
    by_scale: dict[str, list] = defaultdict(list)
    for r in rows:
        by_deg[r["degradation"]].append(r)
        by_scale[f"x{r['scale']}"].append(r)
    return {
        "overall": mean(rows),
        "by_degradation": {k: mean(v) for k, v in sorted(by_deg.items())},
        "by_scale": {k: mean(v) for k, v in sorted(by_scale.items())},
    }


def face_recognition(
    embed: Callable[[np.ndarray], np.ndarray],
    clean: np.ndarray,
    variants: Mapping[str, np.ndarray],
    target_fpr: float = 0.01,
) -> dict[str, Any]:
    """Verification accuracy of a face-embedding model on damaged/restored faces.

    Each eval face is its own identity. Genuine pairs compare a clean face with a
    variant (damaged or restored) of the same face; impostor pairs compare it with
    the variant of another face. The decision threshold is chosen on clean pairs
    only: the cosine similarity that clean faces of different people exceed with
    probability ``target_fpr``. At that threshold each variant gets TPR (genuine
    pairs accepted), FPR (impostor pairs accepted) and accuracy on a balanced set of
    genuine and impostor pairs. Image-quality metrics and these figures can
    disagree; that is why both are reported.
    """
    def unit(e):
        e = np.asarray(e, np.float64).reshape(len(e), -1)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    n = len(clean)
    if n < 3:
        raise ValueError("face-recognition evaluation needs at least 3 faces")
    ref = unit(embed(clean))
    off = ~np.eye(n, dtype=bool)
    clean_impostor = (ref @ ref.T)[off]
    threshold = float(np.quantile(clean_impostor, 1.0 - target_fpr))
    out: dict[str, Any] = {"threshold": threshold, "target_fpr": target_fpr, "faces": n,
                           "variants": {}}
    for name, imgs in variants.items():
        sim = ref @ unit(embed(imgs)).T
        genuine, impostor = np.diag(sim), sim[off]
        tpr = float(np.mean(genuine >= threshold))
        fpr = float(np.mean(impostor >= threshold))
        out["variants"][name] = {
            "tpr": tpr, "fpr": fpr, "accuracy": (tpr + 1.0 - fpr) / 2.0,
            "genuine_similarity": float(np.mean(genuine)),
            "impostor_similarity": float(np.mean(impostor)),
        }
    return out


# -- the baselines a training run shows next to its model ---------------------------

RUN_BASELINES = {"inpaint": ("input", "opencv_ns"), "sr": ("bicubic",)}
"""Baselines each training run scores once on its eval faces, per task."""
BASELINE_NAMES = {"input": "damaged input", "opencv_ns": "OpenCV Navier-Stokes (true mask)",
                  "bicubic": "bicubic upsampling"}


def baseline_scores(batches: Iterable[Mapping[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM (8-bit RGB, as the run's validation) of the classical baselines
    on eval batches: the damaged input and OpenCV Navier–Stokes inpainting given the
    true mask (inpainting), bicubic upsampling (super-resolution).

    Returns ``{name: {"psnr": dB, "ssim": s, "images": n}}`` with names from
    :data:`RUN_BASELINES`; inpainting fills also get ``hole_sharpness``
    (:func:`tfface.metrics.hole_sharpness`).
    """
    restorers = {"input": damaged_input, "opencv_ns": opencv_inpaint("ns"), "bicubic": bicubic}
    scores: dict[str, dict[str, list]] = {}
    for batch in batches:
        batch = {k: np.asarray(v) for k, v in batch.items()}
        names = RUN_BASELINES["sr" if "lr" in batch else "inpaint"]
        for name in names:
            pred = np.asarray(restorers[name](batch))
            s = scores.setdefault(name, {"psnr": [], "ssim": [], "hole_sharpness": []})
            s["psnr"].extend(metrics.psnr(batch["clean"], pred).numpy().tolist())
            s["ssim"].extend(metrics.ssim(batch["clean"], pred).numpy().tolist())
            if "mask" in batch and name != "input":
                s["hole_sharpness"].extend(metrics.hole_sharpness(
                    batch["clean"], pred, batch["mask"]).numpy().tolist())
    if not scores:
        raise ValueError("no eval batches to score the baselines on")
    out = {}
    for name, s in scores.items():
        out[name] = {"psnr": float(np.mean(s["psnr"])), "ssim": float(np.mean(s["ssim"])),
                     "images": len(s["psnr"])}
        sharp = [v for v in s["hole_sharpness"] if np.isfinite(v)]
        if sharp:
            out[name]["hole_sharpness"] = float(np.mean(sharp))
    return out


def baseline_verdict(psnr: float | None, ssim: float | None,
                     baselines: Mapping[str, Mapping[str, float]]) -> tuple[bool, str]:
    """Whether a model's validation PSNR beats every baseline, and one line saying so,
    e.g. ``"beats the damaged input (+11.2 dB) and OpenCV ... (+0.9 dB)"``."""
    if psnr is None or not np.isfinite(psnr):
        return False, "no validation score yet, so no comparison with the baselines"
    parts, beats = [], True
    for name, b in baselines.items():
        d = psnr - b["psnr"]
        beats &= d > 0
        ssim_txt = f", SSIM {b['ssim']:.4f}" if ssim is not None else ""
        parts.append(f"{BASELINE_NAMES.get(name, name)} {b['psnr']:.2f} dB{ssim_txt} "
                     f"({d:+.2f} dB)")
    own = f"{psnr:.2f} dB" + (f", SSIM {ssim:.4f}" if ssim is not None else "")
    verb = "beats every baseline" if beats else "does NOT beat every baseline"
    return beats, f"the model ({own}) {verb}: " + "; ".join(parts)
