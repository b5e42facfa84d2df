"""Inpainting quality where users look: a large face in a 1024x768 photo, at its own resolution.

    PYTHONPATH=$PWD python benchmarks/photo_inpaint.py /work/data/hq-dev-256 \\
        --model android_demo_assets/vnet/model_int8_mixed.tflite --count 60 --face-px 350 \\
        --occlusions facemask sunglasses irregular --grid-dir /work/scratch/photo_inpaint
        [--sheet-dir DIR]   # every face, to count by eye

Each held-out face (an aligned crop in the training framing, e.g. faces-hq dev prepared
with ``python -m pipelines.prepare``) is resized to ``--face-px`` (bicubic when that
enlarges it: the ground truth is then itself an enlargement, say so with the figures),
damaged at that resolution by one occlusion generator (the same synthesis as training,
drawn at the photo's scale) and placed off centre in a 1024x768 photo on a soft
background. ``FacePipeline`` restores the photo given the true hole (``--mask``), so the
figures judge the fill and the paste-back, not the occluder segmenter; ``--auto-mask``
lets the shipped segmenter find the hole instead. Scored inside the true hole, in photo
pixels, against the undamaged photo: PSNR, SSIM, hole sharpness (Sobel gradient of the
result ÷ that of the real face inside the hole eroded by 2 px; 1.0 = as sharp as the
real face) and a seam measure (gradient magnitude on the hole's border ring ±2 px,
result ÷ real face: well above 1 is a visible edge or colour step). With ``--auto-mask`` the
number to read is what is left of the occluder: the share of the true hole within 12
levels of the damaged photo, and the faces where at most 2 % is left ("gone"; a face
that is not found or gets no hole counts as all left). OpenCV
Navier–Stokes on the same photo and true hole is the baseline. ``--grid-dir`` writes the
worst, median and best faces per model (face regions at photo resolution) for looking.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

import tfface  # noqa: F401

PHOTO = (768, 1024)


def _gray_grad(rgb: np.ndarray) -> np.ndarray:
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def scores(truth: np.ndarray, out: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, sharpness and seam of ``out`` against ``truth`` over ``hole`` (bool)."""
    k = np.ones((5, 5), np.uint8)
    inner = cv2.erode(hole.astype(np.uint8), k) > 0
    ring = (cv2.dilate(hole.astype(np.uint8), k) > 0) & ~inner
    d = truth[hole].astype(np.float64) - out[hole].astype(np.float64)
    mse = float(np.mean(d ** 2))
    g_t, g_o = _gray_grad(truth), _gray_grad(out)
    ys, xs = np.nonzero(hole)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    t = truth[y0:y1, x0:x1].astype(np.float64)
    o = out[y0:y1, x0:x1].astype(np.float64)
    win = cv2.getGaussianKernel(11, 1.5) @ cv2.getGaussianKernel(11, 1.5).T
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def f(x):
        return cv2.filter2D(x, -1, win, borderType=cv2.BORDER_REFLECT)

    mu_t, mu_o = f(t), f(o)
    stt, soo, sto = f(t * t) - mu_t ** 2, f(o * o) - mu_o ** 2, f(t * o) - mu_t * mu_o
    smap = ((2 * mu_t * mu_o + c1) * (2 * sto + c2)) / ((mu_t ** 2 + mu_o ** 2 + c1)
                                                        * (stt + soo + c2))
    return {
        "psnr": 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse),
        "ssim": float(smap.mean(-1)[hole[y0:y1, x0:x1]].mean()),
        "sharpness": float(g_o[inner].mean() / max(g_t[inner].mean(), 1e-6)),
        "seam": float(g_o[ring].mean() / max(g_t[ring].mean(), 1e-6)),
    }


def pick_files(folder: str, count: int) -> list[str]:
    """``count`` image files of ``folder``, spread evenly over its sorted listing."""
    files = sorted(f for f in os.listdir(folder)
                   if f.lower().endswith((".png", ".jpg", ".jpeg")))
    return files[:: max(1, len(files) // max(count, 1))][:count]


def remnant(damaged: np.ndarray, out: np.ndarray, hole: np.ndarray,
            levels: int | None = None) -> float:
    """The fraction of the true hole that still shows the occluder: pixels whose output is
    within ``levels`` (default: ``tfface.evaluation.REMNANT_LEVELS``) of the damaged photo
    (largest change over R, G, B), as :func:`tfface.evaluation.hole_remnant` counts it."""
    if levels is None:
        from tfface.evaluation import REMNANT_LEVELS as levels
    change = np.abs(out.astype(np.int16) - damaged.astype(np.int16)).max(-1)
    return float(((change <= levels) & hole).sum() / max(int(hole.sum()), 1))


def make_photo(face: np.ndarray, kind: str, seed: int, face_px: int, data_cfg):
    """(clean photo, damaged photo, hole) with the face at ``face_px`` off centre."""
    import tensorflow as tf

    from tfface.data import occlusion as occ
    from tfface.faces.align import TEMPLATE

    interp = cv2.INTER_CUBIC if face_px > face.shape[0] else cv2.INTER_AREA
    big = cv2.resize(face, (face_px, face_px), interpolation=interp)
    cfg = data_cfg
    cfg.image_size = face_px
    fns = occ.make_occlusion_fns(cfg, [kind])
    o = occ.occlude(tf.constant(big), tf.constant(TEMPLATE, tf.float32),
                    tf.constant([seed, 7], tf.int64), {kind: 1.0}, fns)
    damaged = np.clip(np.round(o["occluded"].numpy()), 0, 255).astype(np.uint8)
    mask = o["mask"].numpy()[..., 0] > 0.5
    h, w = PHOTO
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([90 + 60 * xx / w, 110 + 40 * yy / h, 140 + 30 * np.sin(xx / 90.0)], -1)
    clean = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    y0 = int(rng.integers(0, h - face_px + 1))
    x0 = int(rng.integers(0, w - face_px + 1))
    clean[y0:y0 + face_px, x0:x0 + face_px] = big
    bad = clean.copy()
    bad[y0:y0 + face_px, x0:x0 + face_px] = damaged
    hole = np.zeros(PHOTO, bool)
    hole[y0:y0 + face_px, x0:x0 + face_px] = mask
    return clean, bad, hole, (y0, x0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/photo_inpaint.py",
                                description=__doc__.splitlines()[0])
    p.add_argument("folder", help="aligned held-out faces (training framing)")
    p.add_argument("--model", nargs="+", required=True, help="inpainting .tflite file(s)")
    p.add_argument("--count", type=int, default=60)
    p.add_argument("--face-px", type=int, default=350)
    p.add_argument("--occlusions", nargs="+", default=["facemask", "sunglasses", "irregular"])
    p.add_argument("--mask-dir", default="../shared/data/masks-irregular")
    p.add_argument("--facemask-dir", default="../shared/data/facemask-templates")
    p.add_argument("--auto-mask", action="store_true",
                   help="let the shipped occluder segmenter find the hole (default: true hole)")
    p.add_argument("--segmenter", metavar="FILE",
                   help="with --auto-mask: this occluder segmenter (.tflite or a training "
                        "folder) instead of the shipped segmenter_int8.tflite")
    p.add_argument("--detector", default="auto",
                   help="face detector (default: auto, tfface-restore's own; mtcnn finds "
                        "fewer masked faces)")
    p.add_argument("--edge-threshold", type=float,
                   help="with --auto-mask: the segmenter's edge threshold (default: restore's)")
    p.add_argument("--hole-grow", type=int,
                   help="with --auto-mask: px (of a 128 px crop) the found hole grows by "
                        "(default: restore's)")
    p.add_argument("--grid-dir", help="write worst/median/best face regions here (not the repo)")
    p.add_argument("--sheet-dir", help="also write every face, in photo order, as contact "
                   "sheets of 6 (damaged | each model's result | real) with sheet.tsv naming "
                   "each row, for counting by eye (not the repo)")
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args(argv)
    if args.edge_threshold is not None and not 0.0 < args.edge_threshold <= 0.5:
        p.error("--edge-threshold must be in (0, 0.5], the segmenter's threshold or below")
    if args.hole_grow is not None and args.hole_grow < 0:
        p.error("--hole-grow must be 0 or more")
    if args.segmenter and not args.auto_mask:
        p.error("--segmenter finds the hole only with --auto-mask")

    from tqdm import tqdm

    from tfface.config import DataConfig
    from tfface.faces import make_detector
    from tfface.restore.photo import FacePipeline
    from tfface.restore.model import Restorer

    files = pick_files(args.folder, args.count)
    if not files:
        print(f"error: no faces in {args.folder}", file=sys.stderr)
        return 2
    data_cfg = DataConfig(mask_dir=args.mask_dir, facemask_dir=args.facemask_dir,
                          face_framing="template")
    segmenter = None
    if args.auto_mask:
        from tfface.segmenter.infer import OccluderSegmenter, SegmenterError
        try:
            segmenter = OccluderSegmenter(args.segmenter or os.path.join(
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                "android_demo_assets", "segmenter", "segmenter_int8.tflite"),
                **({} if args.edge_threshold is None else {"edge_threshold": args.edge_threshold}))
        except SegmenterError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    pipe = FacePipeline(make_detector(args.detector), segmenter, min_face=8,
                        **({} if args.hole_grow is None else {"hole_grow": args.hole_grow}))
    restorers = [Restorer.load(m) for m in args.model]
    names = [os.path.join(os.path.basename(os.path.dirname(os.path.abspath(m))),
                          os.path.basename(m)) for m in args.model]
    rows: dict[str, list] = {n: [] for n in names}
    rows["opencv_ns"] = []
    keep: dict[str, list] = {k: [] for k in rows}
    sheet: list = []  # (photo index, file, kind, [damaged, each model's result or None, real])
    missed: dict[str, int] = {}
    gone: dict[str, list] = {k: [] for k in rows}  # (kind, remnant) of every face
    for i, f in enumerate(tqdm(files, desc="photos", unit="photo")):
        face = cv2.cvtColor(cv2.imread(os.path.join(args.folder, f)), cv2.COLOR_BGR2RGB)
        kind = args.occlusions[i % len(args.occlusions)]
        clean, bad, hole, (y0, x0) = make_photo(face, kind, args.seed + i, args.face_px,
                                                data_cfg)
        outs = {}
        for name, r in zip(names, restorers):
            out, rep = pipe.restore(r, bad, None if args.auto_mask else hole.astype(np.uint8))
            outs[name] = out if rep.restored else None
            if not rep.restored:
                missed[name] = missed.get(name, 0) + 1
        outs["opencv_ns"] = cv2.inpaint(bad, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_NS)
        sl = (slice(y0, y0 + args.face_px), slice(x0, x0 + args.face_px))
        left = {n: remnant(bad, bad if o is None else o, hole) for n, o in outs.items()}
        sheet.append((i, f, kind, [left[n] for n in names],
                      [bad[sl]] + [None if outs[n] is None else outs[n][sl] for n in names]
                      + [clean[sl]]))
        for name, out in outs.items():
            gone[name].append((kind, left[name]))
            if out is None:
                continue
            s = scores(clean, out, hole)
            s["kind"] = kind
            rows[name].append(s)
            keep[name].append((s["psnr"], bad[sl], out[sl], clean[sl]))
    print(f"{len(files)} photos, face {args.face_px} px in a {PHOTO[1]}x{PHOTO[0]} photo, "
          f"{'segmenter' if args.auto_mask else 'true'} hole; inside the hole at photo "
          "resolution (sharpness, seam: result / real face; 1.0 = like the real face)")
    print(f"{'method':40s} {'kind':12s} {'n':>4s} {'PSNR':>7s} {'SSIM':>7s} {'sharp':>6s} "
          f"{'seam':>6s}")
    for name, rs in rows.items():
        for kind in [None, *args.occlusions]:
            sel = [r for r in rs if kind is None or r["kind"] == kind]
            if not sel:
                continue
            m = {k: float(np.mean([r[k] for r in sel])) for k in ("psnr", "ssim", "sharpness",
                                                                   "seam")}
            print(f"{name[:40]:40s} {kind or 'all':12s} {len(sel):4d} {m['psnr']:7.2f} "
                  f"{m['ssim']:7.4f} {m['sharpness']:6.2f} {m['seam']:6.2f}")
    for name, n in missed.items():
        print(f"{name}: {n} face(s) not restored (not found, or no hole on the face)")
    print("occluder left (share of the true hole within 12 levels of the damaged photo; a "
          "face not restored counts whole), and faces where <= 2 % is left, of all faces:")
    for name, rs in gone.items():
        for kind in [None, *args.occlusions]:
            sel = [r for k, r in rs if kind is None or k == kind]
            if sel:
                print(f"  {name[:40]:40s} {kind or 'all':16s} left {100 * np.mean(sel):5.1f} % "
                      f" gone on {sum(r <= 0.02 for r in sel)} / {len(sel)}")
    if args.grid_dir:
        os.makedirs(args.grid_dir, exist_ok=True)
        for name, items in keep.items():
            if not items:
                continue
            items.sort(key=lambda t: t[0])
            pick = [items[0], items[len(items) // 2], items[-1]]
            grid = np.vstack([np.hstack(t[1:]) for t in pick])
            path = os.path.join(args.grid_dir, name.replace("/", "_") + ".png")
            cv2.imwrite(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
            print(f"grid (damaged | restored | real; worst, median, best): {path}")
    if args.sheet_dir:
        write_sheets(args.sheet_dir, sheet, names)
    return 0


def write_sheets(out_dir: str, sheet: list, names: list[str], per: int = 6) -> None:
    """Every face in photo order, ``per`` to a PNG: damaged | each model's result (grey
    where the face was not restored) | real; ``sheet.tsv`` names each row and gives, per
    model, the share of the true hole still showing the occluder (:func:`remnant`)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "sheet.tsv"), "w") as tsv:
        tsv.write("sheet\trow\tphoto\tfile\tocclusion\tcolumns\tleft\n")
        for k in range(0, len(sheet), per):
            rows = []
            for r, (i, f, kind, left, tiles) in enumerate(sheet[k:k + per]):
                real = tiles[-1]
                rows.append(np.hstack([t if t is not None else np.full_like(real, 128)
                                       for t in tiles]))
                tsv.write(f"{k // per}\t{r}\t{i}\t{f}\t{kind}\tdamaged|"
                          + "|".join(names) + "|real\t"
                          + "|".join(f"{100 * v:.1f}%" for v in left) + "\n")
            path = os.path.join(out_dir, f"sheet_{k // per:02d}.png")
            cv2.imwrite(path, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"contact sheets ({len(sheet)} faces, {per} a sheet): {out_dir}")


if __name__ == "__main__":
    sys.exit(main())
