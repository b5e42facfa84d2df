"""Before/after of one public-domain photo at its own resolution, with the figures of each row.

    PYTHONPATH=$PWD python benchmarks/before_after.py --grid docs/img/faces_before_after.jpg

The photo is ``skimage.data.astronaut()`` (public domain, 512x512; her face is about 200 px
wide, so a 128 px model enlarges its result about 1.6x over it). Each row draws one occluder
on the photo at the photo's resolution (``--occluders``; the same synthesis as training,
placed from MTCNN's landmarks) and restores it with ``FacePipeline`` as
``python -m pipelines.restore`` does: the default detector, and the hole found by the
shipped occluder segmenter (``--true-hole``: given the true hole instead). ``--model``
twice makes a ladder (each face goes to the smallest file that covers its size); without
``--model`` it is restore's default (``--look realism``: the shipped 128 px and 256 px
V-Nets as a ladder).

Columns: damaged, restored, original, each a crop around the face at 1:1 (no resampling),
so the figure shows what a user sees. Printed per row, inside the true hole of the photo
(the measures of ``benchmarks/photo_inpaint.py``): PSNR, SSIM, hole sharpness (Sobel
gradient of the result ÷ the original's, on the hole eroded by 2 px; 1.0 = as sharp as the
real face) and seam (the same ratio on the hole's border ring; well above 1 is a visible
edge), with OpenCV Navier–Stokes given the true hole as the baseline.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

import tfface  # noqa: F401
from benchmarks.restore_photo import astronaut, occluded_astronaut
from tfface.shipped import default_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEGMENTER = os.path.join(ROOT, "android_demo_assets", "segmenter", "segmenter_int8.tflite")


def damaged_photo(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(damaged photo, true hole as bool) with ``kind`` drawn at the photo's resolution,
    configured as training configures it."""
    from tfface.config import DataConfig
    from tfface.data import occlusion as occ

    fns = occ.make_occlusion_fns(DataConfig(image_size=astronaut()[0].shape[0]), [kind])
    bad, hole, _ = occluded_astronaut(kind, seed, fns)
    return bad, hole > 0.5


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/before_after.py",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="inpainting .tflite file; repeat it for a "
                   "ladder of sizes (default: tfface-restore's, the shipped 128 px and 256 px "
                   "V-Nets as a ladder)")
    p.add_argument("--occluders", nargs="+", default=["facemask", "sunglasses", "strokes_thick"])
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--true-hole", nargs="*", default=["strokes_thick"], metavar="OCCLUDER",
                   help="occluders whose true hole is given (as with restore --mask) instead "
                   "of found by the segmenter (default: strokes_thick, drawn holes that a "
                   "user marks by hand); give it without names to find every hole")
    p.add_argument("--grid", metavar="FILE", help="write the before/after grid here")
    args = p.parse_args(argv)

    from benchmarks.photo_inpaint import scores
    from tfface.faces import make_detector
    from tfface.restore.photo import FacePipeline
    from tfface.segmenter.infer import OccluderSegmenter
    from tfface.restore.model import Restorer

    models = args.model or default_models()  # what tfface-restore uses: --look realism
    restorer = Restorer.load_many(models)
    rgb, lm = astronaut()
    pipe = FacePipeline(make_detector("auto"), OccluderSegmenter(SEGMENTER))
    names = " + ".join(os.path.relpath(m, ROOT) for m in models)
    print(f"model {names}; astronaut 512x512; hole found by the shipped segmenter, given "
          f"for: {', '.join(args.true_hole) or 'none'}")
    print(f"{'occluder':<15} {'':<10} {'PSNR':>6} {'SSIM':>6} {'sharp':>6} {'seam':>6}")
    c = lm[:2].mean(0)
    half = int(2.7 * np.linalg.norm(lm[1] - lm[0]))
    y0, x0 = max(int(c[1]) - int(0.8 * half), 0), max(int(c[0]) - half, 0)
    sl = (slice(y0, y0 + 2 * half), slice(x0, x0 + 2 * half))  # the face, shown at 1:1
    inner = np.zeros(rgb.shape[:2], bool)  # drawn holes are kept to the face's own square
    inner[y0 + half // 3:y0 + int(1.3 * half), x0 + half // 2:x0 + 2 * half - half // 2] = 1
    rows = []
    for i, kind in enumerate(args.occluders):
        bad, hole = damaged_photo(kind, args.seed + i)
        if kind in args.true_hole:  # strokes cover the whole photo: keep those on the face
            hole &= inner
            bad = np.where(hole[..., None], bad, rgb)
        given = kind in args.true_hole
        out, rep = pipe.restore(restorer, bad, hole.astype(np.uint8) if given else None)
        ns = cv2.inpaint(bad, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_NS)
        for label, img in (("model", out), ("opencv_ns", ns)):
            s = scores(rgb, img, hole)
            print(f"{kind:<15} {label:<10} {s['psnr']:6.2f} {s['ssim']:6.3f} "
                  f"{s['sharpness']:6.2f} {s['seam']:6.2f}")
        print(f"{'':<15} {rep.summary()}; hole {'given' if given else 'found'}")
        rows.append((bad, out))
    if args.grid:
        from tfface.imageio import write_image

        grid = np.concatenate([np.concatenate([b[sl], o[sl], rgb[sl]], 1) for b, o in rows], 0)
        write_image(args.grid, grid)
        print(f"wrote {args.grid} ({grid.shape[1]}x{grid.shape[0]}: damaged | restored | "
              "original, 1:1 crops)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
