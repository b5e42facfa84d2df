"""How well restore's found hole covers an occluder in a photo, for several hole rules.

    PYTHONPATH=$PWD python benchmarks/found_hole.py /work/data/hq-dev-256 --count 48 \\
        --occlusion realmask_unseen --face-px 350        # or --occlusion clean

The photos are ``benchmarks/photo_inpaint.py``'s (an aligned held-out face at ``--face-px``
in a 1024x768 photo, the occluder drawn at that resolution, seed 101 + i). Each face is
found by restore's default detector and aligned at restore's crop size (256 px when the
aligned crop is larger than 128 px, else 128); the shipped segmenter's probability is then
turned into a hole by each rule: ``p > T``, or hysteresis ``hT`` (``p > 0.5`` plus every
pixel above T 8-connected to it, ``OccluderSegmenter.hole_from``), grown by G px of a
128 px crop (``tfface.faces.align.crop_px``). Printed per rule: the mean share of the true
occluder inside the hole ("cover"), the faces where that share is at least 98 %, the share
of the rest of the crop the hole takes ("spill") and the faces that get any hole. With
``--occlusion clean`` the faces wear nothing: every hole is spill.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import photo_inpaint  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/found_hole.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="aligned held-out faces (training framing)")
    p.add_argument("--count", type=int, default=48)
    p.add_argument("--face-px", type=int, default=350)
    p.add_argument("--occlusion", default="realmask_unseen",
                   help="one occlusion generator, or clean (no occluder)")
    p.add_argument("--rules", default="0.5,0.3,0.2,h0.3,h0.2,h0.1",
                   help="comma-separated: T (p > T) or hT (hysteresis from p > 0.5 over p > T)")
    p.add_argument("--grow", default="2,3,4", help="comma-separated growths (px of 128)")
    p.add_argument("--segmenter", default=os.path.join(ROOT, "android_demo_assets", "segmenter",
                                                       "segmenter_int8.tflite"))
    p.add_argument("--mask-dir", default="../shared/data/masks-irregular")
    p.add_argument("--facemask-dir", default="../shared/data/facemask-templates")
    args = p.parse_args(argv)
    try:
        rules = [(r, float(r.lstrip("h"))) for r in args.rules.split(",")]
        grows = [int(g) for g in args.grow.split(",")]
    except ValueError:
        p.error("--rules and --grow take comma-separated numbers (hT for hysteresis)")
    if any(not 0.0 < t < 1.0 or (r.startswith("h") and t > 0.5) for r, t in rules) \
            or any(g < 0 for g in grows):
        p.error("thresholds must be in (0, 1) (hT: in (0, 0.5]) and growths 0 or more")
    if not os.path.isdir(args.folder):
        p.error(f"no such folder: {args.folder}")

    from tqdm import tqdm

    from tfface.config import DataConfig
    from tfface.faces import align as al
    from tfface.faces import make_detector
    from tfface.segmenter.infer import OccluderSegmenter

    files = photo_inpaint.pick_files(args.folder, args.count)
    cfg = DataConfig(mask_dir=args.mask_dir, facemask_dir=args.facemask_dir,
                     face_framing="template")
    seg = OccluderSegmenter(args.segmenter)
    det = make_detector("auto")
    clean_only = args.occlusion == "clean"
    res: dict = {(r, g): [] for r, _ in rules for g in grows}
    for i, f in enumerate(tqdm(files, desc="photos", unit="photo")):
        face = cv2.cvtColor(cv2.imread(os.path.join(args.folder, f)), cv2.COLOR_BGR2RGB)
        clean, bad, hole, _ = photo_inpaint.make_photo(
            face, "realmask_unseen" if clean_only else args.occlusion, 101 + i, args.face_px,
            cfg)
        img = clean if clean_only else bad
        faces = sorted(det.detect(img), key=lambda x: -x.size)
        if not faces:
            continue
        lm = faces[0].landmarks
        s = 256 if al.native_size(lm) > 128 else 128
        crop, _ = al.align_face(img, lm, s)
        truth, _ = al.align_face(hole.astype(np.float32), lm, s)
        truth = (truth[..., 0] if truth.ndim == 3 else truth) > 0.5
        if clean_only:
            truth[:] = False
        prob = seg.probability(crop)
        for r, t in rules:
            base = seg.hole_from(prob, t) if r.startswith("h") else prob > t
            for g in grows:
                auto = al.hole_weight(base, al.crop_px(g, s), 0) > 0.5
                cover = (auto & truth).sum() / max(truth.sum(), 1)
                spill = (auto & ~truth).sum() / max((~truth).sum(), 1)
                res[(r, g)].append((cover, cover >= 0.98, spill, auto.any()))
    n = len(next(iter(res.values())))
    print(f"{args.folder}: {args.occlusion} at {args.face_px} px, {n} of {len(files)} faces "
          "found")
    print(f"{'rule':6s} {'grow':>4s} {'cover':>6s} {'>=98%':>6s} {'spill':>7s} {'any hole':>9s}")
    for (r, g), v in res.items():
        if not v:
            continue
        a = np.asarray(v, np.float64)
        print(f"{r:6s} {g:4d} {a[:, 0].mean():6.3f} {a[:, 1].mean():6.3f} "
              f"{100 * a[:, 2].mean():6.2f}% {a[:, 3].sum():5.0f}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
