"""Derive the canonical 5-landmark template from the training faces themselves.

tfface's folder source makes every training crop the same way: the centred square of
the photo (side = the shorter side), resized to ``data.image_size``
(:func:`tfface.data.sources.base._resize_square_np`). A face restored from a real photo
must be aligned to that same framing, so the template is measured on the training
photos: the detector runs on each photo, its landmarks are moved into the centred
square and divided by its side, and the template is the mean over the photos with
exactly one confident face.

    PYTHONPATH=$PWD python benchmarks/face_template.py /work/shared/data/faces-train \\
        --count 500 --write tfface/faces/template.json

Prints the mean, the spread (std) and the number of photos used; ``--write`` stores
the template as JSON (with how it was derived) for :mod:`tfface.faces.align`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import tfface  # noqa: F401


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--detector", default="mtcnn")
    p.add_argument("--write", metavar="JSON")
    args = p.parse_args(argv)

    from tqdm.auto import tqdm

    from tfface.data.sources import IMAGE_EXTENSIONS, LANDMARK_NAMES
    from tfface.faces.detect import make_detector
    from tfface.data.sources.scan import read_photo

    files = sorted(f for f in os.listdir(args.folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    step = max(1, len(files) // args.count)
    files = files[::step][: args.count]
    det = make_detector(args.detector)
    pts, skipped = [], {"no face": 0, "several faces": 0}
    t0 = time.time()
    for f in tqdm(files, unit="photo"):
        rgb = read_photo(os.path.join(args.folder, f))
        faces = [x for x in det.detect(rgb) if x.score >= 0.95]
        if len(faces) != 1:
            skipped["no face" if not faces else "several faces"] += 1
            continue
        h, w = rgb.shape[:2]
        s = min(h, w)
        off = np.array([(w - s) // 2, (h - s) // 2], np.float64)
        pts.append((faces[0].landmarks - off) / s)
    pts = np.array(pts)
    mean, std = pts.mean(0), pts.std(0)
    print(f"{len(pts)} of {len(files)} photos used ({skipped}); "
          f"{(time.time() - t0) / len(files) * 1e3:.0f} ms a photo")
    for n, m, sd in zip(LANDMARK_NAMES, mean, std):
        print(f"  {n:12s} x {m[0]:.4f} (std {sd[0]:.4f})  y {m[1]:.4f} (std {sd[1]:.4f})")
    if args.write:
        from tfface.fileio import atomic_write

        doc = {
            "format": "tfface-face-template/1",
            "landmarks": LANDMARK_NAMES,
            "points": [[round(float(v), 4) for v in m] for m in mean],
            "std": [[round(float(v), 4) for v in m] for m in std],
            "units": "fractions (x, y) of the square training crop",
            "derived_from": (
                f"{args.detector} landmarks of {len(pts)} of {len(files)} photos of "
                f"{os.path.basename(os.path.normpath(args.folder))} (every {step}th file, "
                "exactly one face with score >= 0.95), moved into the centred square crop "
                "that tfface's folder source makes and divided by its side; mean over photos"),
            "command": "python benchmarks/face_template.py FOLDER --count "
                       f"{args.count} --write tfface/faces/template.json",
        }
        atomic_write(args.write, json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
