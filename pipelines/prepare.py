"""Detect, align and crop the faces of ordinary photos into training crops.

Example::

    python -m pipelines.prepare ~/photos faces/ --size 256
    python -m pipelines.train --arch vnet --data-dir faces/

Each photo gives one square crop framed as the training faces (see
:mod:`tfface.faces.prepare`); photos without a face, with several faces or with a face
too small for the crop size are skipped and listed in OUT_DIR/skipped.tsv.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import tfface  # noqa: F401
from tfface.cli import prog_name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog_name("pipelines.prepare", "tfface-prepare"),
                                description="Photos in, aligned face crops (training framing) out.",
                                epilog="Writes into OUT_DIR: one aligned PNG crop per usable photo "
                                "(same relative path) and skipped.tsv, one line per photo left out "
                                "and why (no face, several faces, too small, unreadable).")
    p.add_argument("raw_dir", metavar="RAW_DIR", help="folder of photos (searched recursively)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for the crops (PNG)")
    p.add_argument("--size", type=int, default=256, help="crop side in px (default: 256)")
    p.add_argument("--face-detector", default="auto", metavar="NAME|FILE",
                   help="auto (default: BlazeFace at two scales with a second look; blazeface "
                   "is the same), auto+mtcnn (more small and covered faces, slower), mtcnn, "
                   "mtcnn+blazeface or a BlazeFace short-range .tflite "
                   "file")
    p.add_argument("--min-scale", type=float, default=0.5,
                   help="skip faces that would be upscaled more than 1/MIN_SCALE times")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import os

    from tfface.faces import DetectorError, make_detector
    from tfface.faces.prepare import prepare_folder
    from tfface.fileio import OutputDirError, check_writable_dir

    if not os.path.isdir(args.raw_dir):
        print(f"error: {args.raw_dir} is not a folder", file=sys.stderr)
        return 2
    if args.size < 16:
        print(f"error: --size must be at least 16, got {args.size}", file=sys.stderr)
        return 2
    try:
        check_writable_dir(args.out_dir, what="output folder")
        det = make_detector(args.face_detector)
    except (DetectorError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = prepare_folder(args.raw_dir, args.out_dir, det, size=args.size,
                         min_scale=args.min_scale, progress=not args.quiet)
    print(res.summary())
    return 0 if res.written or res.kept else 1


if __name__ == "__main__":
    sys.exit(main())
