"""How well the occluder segmenter finds occluders drawn unlike its training data.

    PYTHONPATH=$PWD python benchmarks/segmenter_robustness.py \\
        [--segmenter android_demo_assets/segmenter/segmenter_int8.tflite | RUN_DIR] \\
        [--faces ../shared/data/faces-dev --count 48]

The segmenter is trained on occluders drawn at 2x its 64 px input and shrunk. Here they
are drawn at photo resolution instead and the face is aligned as restore aligns it:

- ``astronaut``: ``skimage.data.astronaut()`` (512 px, public domain) with each occluder
  drawn on the photo at its detected landmarks, for several seeds (face-mask styles,
  sunglasses, eye bars), aligned by those landmarks to the template at 128 px with
  restore's own :func:`tfface.faces.align.align_face`;
- ``faces``: faces of a folder never seen in training (default: faces-dev), resized to
  256 px (4x the segmenter's side), occluders drawn there at the template's landmarks,
  then the crop shrunk to 128 px as restore's crops are.

Printed per set and occluder: mean IoU of ``p > 0.5`` against the drawn occluder, the
worst single face's IoU, and the share of the occluder's pixels found (recall).

Occluders no segmenter trained on (``--facemask-dir``, default the shared MaskTheFace
folder; see :data:`tfface.data.occlusion.HELD_OUT`):

- ``held-out``: the same faces at 256 px with ``realmask_unseen`` (the KN95 and cloth
  template families, recoloured, re-textured and lit) and ``hand_unseen`` (hands and
  phones), drawn at 256 px under the photo's conditions (low light, grayscale, blur,
  noise, by chance as in training), shrunk to restore's 128 px crop. Printed by kind
  (masks: light, black, patterned; hands, phones) with, besides IoU, **restore's auto
  mask**: the hole restore replaces (``OccluderSegmenter.hole_from``: ``p > 0.5`` and the
  pixels above 0.1 connected to it, since 2026-12-06; grown by 2 px, ``FacePipeline``'s
  ``hole_grow``): the share of the occluder it covers, the faces where it covers at
  least 98 % of it, and the share of the face outside the occluder it takes too.
- ``synthesis``: ``--synthesis-count`` faces per occluder of the folder as the first
  segmenter's training drew them (``segmenter_dataset``, 64 px from 2x, the mixture
  :data:`~tfface.segmenter.model.SEGMENTER_MIXTURE_V1`; no jitter), so two files are
  compared on the old occluders under one synthesis. ``--sets`` picks sets.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

import tfface  # noqa: F401
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCCLUDERS = ("facemask", "sunglasses", "eye_bar")


def _scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    inter = float((pred & true).sum())
    union = float((pred | true).sum())
    return (inter / union if union else 1.0), (inter / true.sum() if true.sum() else 1.0)


def _summary(rows) -> tuple[float, float, float]:
    """Mean IoU, mean recall, and the worst single IoU (a skin-coloured mask is the hard case)."""
    a = np.asarray(rows)
    return float(a[:, 0].mean()), float(a[:, 1].mean()), float(a[:, 0].min())


def _occlude(rgb: np.ndarray, lm_frac: np.ndarray, name: str, seed: int):
    from tfface.data import occlusion as occ

    o = occ.occlude(tf.constant(rgb), tf.constant(lm_frac, tf.float32),
                    tf.constant([seed, 11], tf.int64), {name: 1.0}, occ.default_occluders([name]))
    px = np.clip(np.round(o["occluded"].numpy()), 0, 255).astype(np.uint8)
    return px, o["mask"].numpy()[..., 0] > 0.5


def astronaut_set(seg, seeds: int):
    from skimage import data

    from tfface.faces import align as al
    from tfface.faces import make_detector

    rgb = data.astronaut()
    lm = make_detector("mtcnn").detect(rgb)[0].landmarks
    out = {}
    for name in OCCLUDERS:
        rows = []
        for seed in range(seeds):
            px, hole = _occlude(rgb, lm / rgb.shape[0], name, seed)
            crop, m = al.align_face(px, lm, 128)
            true = cv2.warpAffine(hole.astype(np.float32), m, (128, 128)) > 0.5
            rows.append(_scores(seg.hole(crop), true))
        out[name] = _summary(rows)
    return out


def _compose_mask(hole: np.ndarray, lm: np.ndarray, placements, size=(768, 1024)):
    """The occluder's pixels of a scene of :func:`benchmarks.restore_photo.compose_scene`
    (the same head crop, ellipse alpha and warps)."""
    h, w = size
    c = lm[:2].mean(0)
    d = np.linalg.norm(lm[1] - lm[0])
    half = int(2.6 * d)
    x0, y0 = int(c[0]) - half, int(c[1]) - half
    head = hole.astype(np.float32)[max(y0, 0):y0 + 2 * half, max(x0, 0):x0 + 2 * half]
    hh, hw = head.shape[:2]
    alpha = np.zeros((hh, hw), np.float32)
    cv2.ellipse(alpha, (hw // 2, hh // 2), (int(hw * 0.42), int(hh * 0.48)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (31, 31), 0)
    out = np.zeros((h, w), np.float32)
    for cx, cy, eye_px, deg in placements:
        m = cv2.getRotationMatrix2D((hw / 2, hh / 2), deg, eye_px / d)
        m[:, 2] += np.array([cx, cy], np.float64) - [hw / 2, hh / 2]
        a = cv2.warpAffine(alpha, m, (w, h))
        out = out * (1 - a) + cv2.warpAffine(head, m, (w, h), flags=cv2.INTER_AREA) * a
    return out


def scenes_set(seg, seeds: int):
    """The 1024x768 scenes of benchmarks/restore_photo.py (one face tilted 10 degrees,
    four faces of 30-56 px eye distance), faces found by MTCNN as restore finds them."""
    from skimage import data

    from tfface.faces import align as al
    from tfface.faces import make_detector

    sys.path.insert(0, ROOT)
    from benchmarks.restore_photo import FOUR, ONE, compose_scene

    rgb = data.astronaut()
    det = make_detector("mtcnn")
    lm = det.detect(rgb)[0].landmarks
    out = {}
    for name in OCCLUDERS:
        rows = []
        for seed in range(seeds):
            px, hole = _occlude(rgb, lm / rgb.shape[0], name, seed)
            for placements in (ONE, FOUR):
                scene = compose_scene(px, lm, placements)
                smask = _compose_mask(hole, lm, placements)
                for face in det.detect(scene):
                    crop, m = al.align_face(scene, face.landmarks, 128)
                    true = cv2.warpAffine(smask, m, (128, 128)) > 0.5
                    rows.append(_scores(seg.hole(crop), true))
        out[name] = _summary(rows)
    return out


def faces_set(seg, folder: str, count: int):
    from tfface.faces.align import TEMPLATE

    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".png")))[:count]
    out = {}
    for name in OCCLUDERS:
        rows = []
        for i, f in enumerate(files):
            bgr = cv2.imread(os.path.join(folder, f))
            h, w = bgr.shape[:2]
            s = min(h, w)
            sq = bgr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, ::-1]
            big = cv2.resize(sq, (256, 256), interpolation=cv2.INTER_AREA)
            px, hole = _occlude(np.ascontiguousarray(big), np.asarray(TEMPLATE), name, i)
            crop = cv2.resize(px, (128, 128), interpolation=cv2.INTER_AREA)
            true = cv2.resize(hole.astype(np.float32), (128, 128), interpolation=cv2.INTER_AREA) > 0.5
            rows.append(_scores(seg.hole(crop), true))
        out[name] = _summary(rows)
    return out


LOOK_NAMES = ("light", "black", "patterned")
HELD_OUT_SET = ("realmask_unseen", "hand_unseen")


def _kind(name: str, mask_seed, rm) -> str:
    """The held-out occluder's kind: a mask's look, or hand / phone."""
    if name == "realmask_unseen":
        return f"mask {LOOK_NAMES[int(rm.look(mask_seed))]}"
    from tfface.data.occlusion import hands

    return "hand" if bool(hands.draws_hand(mask_seed)) else "phone"


def heldout_set(seg, folder: str, count: int, facemask_dir: str, grow: int = 2):
    """Per kind: rows of (IoU, recall, auto-mask coverage, covered >= 98 %, spill)."""
    from tfface.config import DataConfig
    from tfface.data import occlusion as occ
    from tfface.data.occlusion.core import _split
    from tfface.faces import align as al
    from tfface.faces.align import TEMPLATE

    dcfg = DataConfig(image_size=256)
    dcfg.facemask_dir = facemask_dir
    edge = min(type(seg).EDGE_THRESHOLD, seg.threshold)  # restore's edge rule, for the auto mask
    gens = occ.make_occlusion_fns(dcfg, list(HELD_OUT_SET))
    rm = occ.RealMasks(facemask_dir, 256, "unseen")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".png")))[:count]
    rows: dict[str, list] = {}
    conditions = {k: 0 for k in occ.PHOTO_CONDITIONS}
    for name in HELD_OUT_SET:
        for i, f in enumerate(files):
            bgr = cv2.imread(os.path.join(folder, f))
            h, w = bgr.shape[:2]
            m = min(h, w)
            sq = bgr[(h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m, ::-1]
            big = np.ascontiguousarray(cv2.resize(sq, (256, 256), interpolation=cv2.INTER_AREA))
            seed = tf.constant([i, 37], tf.int64)
            o = occ.occlude(tf.constant(big), tf.constant(np.asarray(TEMPLATE, np.float32)), seed,
                            {name: 1.0}, gens)
            (px,), flags = occ.photo_conditions(tf.constant([i, 41], tf.int64), [o["occluded"]])
            for k, v in flags.items():
                conditions[k] += bool(v)
            px = np.clip(np.round(px.numpy()), 0, 255).astype(np.uint8)
            hole = o["mask"].numpy()[..., 0]
            crop = cv2.resize(px, (128, 128), interpolation=cv2.INTER_AREA)
            true = cv2.resize(hole, (128, 128), interpolation=cv2.INTER_AREA) > 0.5
            prob = seg.probability(crop)
            pred = prob > seg.threshold
            iou, rec = _scores(pred, true)
            # restore's hole: the edge pixels joined to it, grown
            auto = al.hole_weight(seg.hole_from(prob, edge), grow, 0) > 0.5
            cover = float((auto & true).sum() / max(true.sum(), 1))
            spill = float((auto & ~true).sum() / max((~true).sum(), 1))
            kind = _kind(name, _split(seed, 3)[1], rm)
            rows.setdefault(kind, []).append((iou, rec, cover, cover >= 0.98, spill))
    return rows, conditions, len(files)


def synthesis_set(seg, folder: str, count: int, facemask_dir: str | None, mask_dir: str | None):
    """Mean IoU per old occluder under the first segmenter's training synthesis."""
    import dataclasses

    from tfface.metrics import mask_scores
    from tfface.segmenter.data import segmenter_dataset
    from tfface.segmenter.model import SEGMENTER_MIXTURE_V1, SegmenterConfig

    cfg = SegmenterConfig(data_dir=folder, image_size=64, batch_size=16, facemask_dir=facemask_dir,
                          mask_dir=mask_dir, occlusions=dict(SEGMENTER_MIXTURE_V1))
    cfg = dataclasses.replace(cfg, photo_conditions=0.0)
    names = [n for n in SEGMENTER_MIXTURE_V1 if n != "irregular" or mask_dir]
    out = {}
    for name in names:
        ious = []
        for x, y in segmenter_dataset(cfg, "train", data_dir=folder, augment=False,
                                      mixture={name: 1.0}):
            crops = np.clip(np.round((x.numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8)
            p = np.stack([seg.probability(c) for c in crops])[..., None]
            ious += list(mask_scores(y.numpy(), p)[1].numpy())
            if len(ious) >= count:
                break
        out[name] = float(np.mean(ious[:count]))
    out["all"] = float(np.mean(list(out.values())))
    return out


def _print_heldout(rows, conditions, n) -> None:
    print(f"  held-out occluders on faces-dev at 256 px ({n} faces each; photo conditions: "
          + ", ".join(f"{k} {v}" for k, v in conditions.items()) + ")")
    print(f"    {'kind':16s} {'faces':>5s} {'IoU':>6s} {'worst':>6s} {'recall':>7s} "
          f"{'auto-mask cover':>16s} {'covered>=98%':>13s} {'spill':>6s}")
    groups = {k: rows[k] for k in sorted(rows)}
    masks = [r for k, v in rows.items() if k.startswith("mask") for r in v]
    hands = [r for k, v in rows.items() if not k.startswith("mask") for r in v]
    groups.update({"realmask_unseen": masks, "hand_unseen": hands, "all held-out": masks + hands})
    for k, v in groups.items():
        if not v:
            continue
        a = np.asarray(v, np.float64)
        print(f"    {k:16s} {len(a):5d} {a[:, 0].mean():6.3f} {a[:, 0].min():6.3f} "
              f"{a[:, 1].mean():7.3f} {a[:, 2].mean():16.3f} "
              f"{int(a[:, 3].sum()):6d}/{len(a):<6d} {a[:, 4].mean():6.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segmenter", default=os.path.join(ROOT, "android_demo_assets", "segmenter",
                                                       "segmenter_int8.tflite"))
    p.add_argument("--faces", default=os.path.join(ROOT, "..", "shared", "data", "faces-dev"))
    p.add_argument("--count", type=int, default=48)
    p.add_argument("--seeds", type=int, default=12)
    data = os.path.join(ROOT, "..", "shared", "data")
    p.add_argument("--facemask-dir", default=os.path.join(data, "facemask-templates"),
                   help="MaskTheFace folder (the held-out KN95 and cloth templates)")
    p.add_argument("--mask-dir", default=os.path.join(data, "masks-irregular"),
                   help="irregular hole masks (the synthesis set's 'irregular')")
    p.add_argument("--synthesis-count", type=int, default=64)
    p.add_argument("--no-face-support", action="store_true",
                   help="keep what the file finds outside the face's ellipse "
                        "(OccluderSegmenter.FACE_SUPPORT; restore clips it)")
    p.add_argument("--sets", default="astronaut,scenes,faces,heldout,synthesis",
                   help="comma list of astronaut, scenes, faces, heldout, synthesis")
    args = p.parse_args(argv)
    from tfface.segmenter.infer import OccluderSegmenter, SegmenterError

    try:
        # edge_threshold = threshold: IoU and recall score p > 0.5, the segmenter's own
        # decision; the held-out set's auto mask adds restore's edge rule itself
        seg = OccluderSegmenter(args.segmenter, face_support=not args.no_face_support,
                                edge_threshold=0.5)
    except SegmenterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wanted = set(args.sets.split(","))
    print(f"segmenter {args.segmenter}, "
          + ("whole crop" if args.no_face_support else "clipped to the face's ellipse as restore"))
    sets = {}
    if "astronaut" in wanted:
        sets["astronaut (512 px photo)"] = astronaut_set(seg, args.seeds)
    if "scenes" in wanted:
        sets["astronaut scenes (1024x768, detected)"] = scenes_set(seg, max(args.seeds // 3, 1))
    faces_ok = os.path.isdir(args.faces)
    if not faces_ok and wanted & {"faces", "heldout", "synthesis"}:
        print(f"  (no face folder {args.faces}: the faces, held-out and synthesis sets skipped)")
    if faces_ok and "faces" in wanted:
        sets[f"{os.path.basename(os.path.normpath(args.faces))} at 256 px"] = \
            faces_set(seg, args.faces, args.count)
    for title, res in sets.items():
        cells = ", ".join(f"{k} IoU {v[0]:.3f} (worst {v[2]:.3f}) recall {v[1]:.3f}"
                          for k, v in res.items())
        print(f"  {title}: {cells}")
    if faces_ok and "heldout" in wanted:
        if os.path.isdir(args.facemask_dir):
            _print_heldout(*heldout_set(seg, args.faces, args.count, args.facemask_dir))
        else:
            print(f"  (no template folder {args.facemask_dir}: the held-out set skipped)")
    if faces_ok and "synthesis" in wanted:
        fm = args.facemask_dir if os.path.isdir(args.facemask_dir) else None
        md = args.mask_dir if os.path.isdir(args.mask_dir) else None
        res = synthesis_set(seg, args.faces, args.synthesis_count, fm, md)
        print(f"  first training synthesis (64 px from 2x, {args.synthesis_count} faces each), "
              "IoU: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
