"""Stripes in inpainted holes: periodic, grid-locked texture, and which loss term asks for it.

    PYTHONPATH=$PWD python benchmarks/fill_stripes.py /work/data/hq-dev-256 --images 16 \\
        --model K4=android_demo_assets/vnet256/keras:best --model D=/work/runs/vnet256-D:last \\
        --critic /work/runs/vnet256-D:ckpt-500 --at K4

The first ``--images`` faces of a held-out folder (fixed order), each damaged by one
occlusion generator (``--occlusion``, default face masks: the large holes where run D of
docs/realism.md painted horizontal stripes) and filled by every ``--model``
(``NAME=RUN_DIR:best|last|ckpt-N``; a checkpoint's EMA generator when the run keeps one).
Measured on the luma inside the hole eroded by 6 px, in 8-bit levels:

* **grid-locked amplitude** at vertical periods 16, 8 and 4 px: the Fourier coefficient
  of the fill at that period along the image rows, averaged over the faces as complex
  numbers, so only a pattern at the same phase in every face (locked to the pixel grid,
  as a network's strides are) survives. A real face is near 0.
* **crop power at 8 px**: power at vertical period 8 px of a 48x48 crop at the hole's
  centre (trend removed, Hann window), and its ratio to the geometric mean of the
  neighbouring periods (9.6 and 6.9 px): a real face's spectrum falls smoothly (ratio
  below 1); a striped fill has a spike.

``--critic RUN_DIR:ckpt-N`` also loads that run's critic (``model.params.disc`` of its
config), prints its scores of every fill and, at the fills of ``--at``, takes the input
gradient of its local (hole) and global scores and the ascent direction of each layer
of the dlib face perceptual loss against the real face: for each, the share of vertical
over horizontal power at periods 24..2 px in the hole crop, and the phase coherence
across faces at 8 and 4 px (1 = the same pattern on every face, about 1/sqrt(faces) for
unrelated ones). A term whose gradient is one grid-locked horizontal stripe pattern is
what a generator following it paints.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tfface  # noqa: F401  (Keras 2 before TensorFlow)

PERIODS = (24, 16, 12, 8, 6, 4, 3, 2)
CROP = 48


def _luma(im: np.ndarray) -> np.ndarray:
    return 0.299 * im[..., 0] + 0.587 * im[..., 1] + 0.114 * im[..., 2]


def _holes(masks: np.ndarray) -> list[np.ndarray]:
    from scipy.ndimage import binary_erosion

    return [binary_erosion(m[..., 0] > 0.5, iterations=6) for m in masks]


def _coefficients(images: np.ndarray, holes, period: int) -> np.ndarray:
    """Per face: the hole's luma Fourier coefficient at vertical ``period`` px (8-bit)."""
    rows = np.arange(images.shape[1])[:, None]
    wave = np.exp(-2j * np.pi * rows / period)
    return np.array([(_luma(im) * 127.5 * h * wave).sum() / h.sum()
                     for im, h in zip(images, holes)])


def _crops(images: np.ndarray, holes) -> list[np.ndarray]:
    out = []
    for im, h in zip(images, holes):
        ys, xs = np.nonzero(h)
        if ys.max() - ys.min() < CROP or xs.max() - xs.min() < CROP:
            continue
        cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
        c = _luma(im)[cy - CROP // 2: cy + CROP // 2, cx - CROP // 2: cx + CROP // 2] * 127.5
        yy, xx = np.mgrid[:CROP, :CROP]
        a = np.stack([np.ones(CROP * CROP), yy.ravel(), xx.ravel()], 1)
        out.append(c - (a @ np.linalg.lstsq(a, c.ravel(), rcond=None)[0]).reshape(CROP, CROP))
    return out


def _power(crops, axis: int) -> np.ndarray:
    """Mean power per frequency (index k: period CROP / k) along ``axis`` (0: vertical)."""
    win = np.hanning(CROP)[:, None] if axis == 0 else np.hanning(CROP)[None, :]
    return np.mean([(np.abs(np.fft.rfft(c * win, axis=axis)) ** 2).mean(1 - axis)
                    for c in crops], 0)


def fill_scores(images: np.ndarray, holes) -> dict[str, float]:
    crops = _crops(images, holes)
    p = _power(crops, 0)
    k = CROP // 8
    out = {f"locked_{q}": float(abs(_coefficients(images, holes, q).mean())) for q in (16, 8, 4)}
    out.update(power_8=float(p[k]), spike_8=float(p[k] / np.sqrt(p[k - 1] * p[k + 1])))
    return out


def gradient_scores(grad: np.ndarray, holes) -> dict[str, float]:
    crops = _crops(grad, holes)
    pv, ph = _power(crops, 0), _power(crops, 1)
    out = {f"v/h_{q}": float(pv[CROP // q] / max(ph[CROP // q], 1e-30)) for q in PERIODS}
    for q in (8, 4):
        a = _coefficients(grad, holes, q)
        out[f"coherence_{q}"] = float(abs(a.mean()) / np.abs(a).mean())
    return out


def _load(spec: str):
    import tensorflow as tf

    from tfface.rundir import load_generator, load_run_config

    run, _, which = spec.rpartition(":")
    if not run:
        run, which = spec, "best"
    if which.startswith("ckpt-"):
        if not os.path.exists(f"{run}/checkpoints/{which}.index"):
            raise SystemExit(f"error: no checkpoint {run}/checkpoints/{which}")
        cfg, gen = load_run_config(run)
        key = "ema_generator" if cfg.train.ema_decay > 0 else "generator"
        tf.train.Checkpoint(**{key: gen}).restore(f"{run}/checkpoints/{which}").expect_partial()
        return cfg, gen
    return load_generator(run, which)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", help="held-out aligned faces (e.g. faces-hq dev at 256 px)")
    ap.add_argument("--model", action="append", required=True, metavar="NAME=RUN:WEIGHTS")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--occlusion", default="facemask")
    ap.add_argument("--critic", metavar="RUN:ckpt-N")
    ap.add_argument("--at", help="model whose fills the critic's gradient is taken at")
    args = ap.parse_args(argv)
    if any("=" not in m for m in args.model):
        print("error: --model takes NAME=RUN_DIR:best|last|ckpt-N", file=sys.stderr)
        return 2

    from tfface.data.sources import FolderSource
    from tfface.evaluation import eval_batches

    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        models[name] = _load(path)
    cfg = next(iter(models.values()))[0]
    cfg.data.eval_occlusions = {args.occlusion: 1.0}
    cfg.data.source, cfg.data.data_dir, cfg.data.eval_count = "folder", args.data_dir, args.images
    batches = eval_batches(cfg, args.images, source=FolderSource(cfg.data, held_out=True))
    b = {k: np.concatenate([x[k] for x in batches]) for k in batches[0]}
    holes = _holes(b["mask"])
    fills = {"real face": b["clean"]}
    for name, (_, gen) in models.items():
        fills[name] = gen.predict([b["occluded"], b["mask"]], verbose=0)
    print(f"{len(b['clean'])} faces of {args.data_dir}, {args.occlusion}; luma in the hole "
          "eroded by 6 px, 8-bit levels")
    print("| fill | grid-locked amplitude, vertical 16 / 8 / 4 px | power at 8 px | "
          "spike (8 px ÷ neighbours) |\n|---|---|---|---|")
    for name, im in fills.items():
        s = fill_scores(im, holes)
        print(f"| {name} | {s['locked_16']:.2f} / {s['locked_8']:.2f} / {s['locked_4']:.2f} | "
              f"{s['power_8']:.0f} | {s['spike_8']:.2f} |")
    if args.critic:
        _critic_report(args, cfg, b, holes, fills)
    return 0


def _critic_report(args, cfg, b, holes, fills) -> None:
    import tensorflow as tf

    from tfface.identity import dlib_resnet
    from tfface.models import get_arch
    from tfface.rundir import load_run_config

    run, _, ckpt = args.critic.rpartition(":")
    if not os.path.exists(f"{run}/checkpoints/{ckpt}.index"):
        raise SystemExit(f"error: no checkpoint {run}/checkpoints/{ckpt}")
    ccfg, _ = load_run_config(run)
    disc = get_arch(ccfg.model.arch).build_discriminator(ccfg)
    tf.train.Checkpoint(discriminator=disc).restore(f"{run}/checkpoints/{ckpt}").expect_partial()
    print(f"\nScores of the critic of {args.critic} (mean over the faces; higher = judged real)")
    print("| fill | local (hole) | global |\n|---|---|---|")
    for name, im in fills.items():
        sc = disc([im.astype(np.float32), b["mask"].astype(np.float32)], training=False).numpy()
        print(f"| {name} | {sc[:, 1].mean():+.2f} | {sc[:, 0].mean():+.2f} |")
    at = args.at or next(n for n in fills if n != "real face")
    img = tf.Variable(fills[at].astype(np.float32))
    mask = tf.constant(b["mask"].astype(np.float32))
    size = int(cfg.data.image_size)
    with tf.GradientTape(persistent=True) as tape:
        s = disc([img, mask], training=False)
        terms = {"critic, local (hole)": tf.reduce_sum(s[:, 1]),
                 "critic, global": tf.reduce_sum(s[:, 0])}
        for layer in dlib_resnet.PERCEPTUAL_LAYERS:  # ascent = minus the loss
            fn = dlib_resnet.perceptual_loss_fn(size, layers=(layer,))
            terms[f"perceptual {layer}"] = -fn(tf.constant(b["clean"]), img)
    print(f"\nInput gradients at the fills of {at} (critic of {args.critic}): vertical ÷ "
          "horizontal power per period (px), phase coherence across faces at 8 and 4 px")
    print("| term | " + " | ".join(str(p) for p in PERIODS) + " | coherence 8 / 4 px |")
    print("|---|" + "---|" * (len(PERIODS) + 1))
    for name, t in terms.items():
        g = gradient_scores(tape.gradient(t, img).numpy(), holes)
        print(f"| {name} | " + " | ".join(f"{g[f'v/h_{p}']:.2f}" for p in PERIODS)
              + f" | {g['coherence_8']:.2f} / {g['coherence_4']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
