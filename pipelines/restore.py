"""Restore faces in photos, folders and videos with a trained model.

Examples::

    python -m pipelines.restore photo.jpg --model runs/demo
    python -m pipelines.restore photos/ clip.mp4 --model runs/demo/model_int8.tflite --out restored/
    python -m pipelines.restore photo.jpg --model runs/demo --mask hole.png --compose --compare

Images keep their names (as PNG) under --out; videos are written as MP4 frame by frame
(no audio). Files that are neither images nor videos are skipped with a note; image
files that cannot be used (empty, truncated, not really an image, too large) are
skipped with a warning each. Outputs that already exist are kept unless --overwrite
is given, so an interrupted batch can simply be run again; every output appears
atomically (no half-written file).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator, Sequence

import tfface  # noqa: F401

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _inputs(paths: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(path, name relative to the given root) of every file under the inputs."""
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in sorted(os.walk(p)):
                for f in sorted(files):
                    full = os.path.join(root, f)
                    yield full, os.path.relpath(full, p)
        else:
            yield p, os.path.basename(p)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.restore",
        description="Restore the face in images, folders of images and videos with a run's "
        "Keras model or a .tflite file (same pre/post-processing for both).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) and video files")
    p.add_argument("--model", required=True, metavar="RUN_DIR|FILE.tflite",
                   help="a run directory (its best Keras weights) or a .tflite file with its card")
    p.add_argument("--out", default="restored", metavar="DIR",
                   help="output folder (default: restored/)")
    p.add_argument("--mask", metavar="FILE",
                   help="hole mask image (white = hole), same size as the input image")
    p.add_argument("--compose", action="store_true",
                   help="paste restored pixels only inside the hole (needs --mask)")
    p.add_argument("--compare", action="store_true",
                   help="also write NAME_compare.png: input and result side by side")
    p.add_argument("--face-detector", metavar="NAME|FILE", default="auto",
                   help="how faces are found: auto (default: every face MTCNN or BlazeFace "
                   "finds), mtcnn, blazeface, a BlazeFace "
                   "short-range .tflite file, or an OpenCV detector file (Haar cascade .xml "
                   "or YuNet .onnx: one square crop a photo, no alignment)")
    p.add_argument("--center", action="store_true",
                   help="no detection: restore the centered square of each image")
    p.add_argument("--segmenter", metavar="FILE",
                   help="occluder segmenter (.tflite) that finds the hole when a model needs "
                   "one and --mask is not given (default: the shipped "
                   "android_demo_assets/segmenter file)")
    p.add_argument("--min-face", type=int, default=16, metavar="PX",
                   help="faces smaller than this (box side, px) are left alone and counted "
                   "(default: 16)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs that already exist (default: keep them and skip "
                   "their inputs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import cv2
    import numpy as np
    from tqdm.auto import tqdm

    from tfface.fileio import OutputDirError, check_writable_dir
    from tfface.inference import InferenceError, Restorer, read_mask, read_photo, restore_image
    from tfface.imageio import write_image

    try:
        restorer = Restorer.load(args.model)
        locator = _locator(args, restorer)
        mask = read_mask(args.mask) if args.mask else None
        if args.compose and mask is None:
            raise InferenceError("--compose needs --mask (it keeps the pixels outside the hole)")
        check_writable_dir(args.out, what="output folder",
                           hint="Pass a folder you can write to with --out DIR.")
    except (InferenceError, FileNotFoundError, OutputDirError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if locator.note:
        print(f"note: {locator.note}", file=sys.stderr)

    files = list(_inputs(args.inputs))
    missing = [p for p, _ in files if not os.path.exists(p)]
    if missing:
        print(f"error: no such file: {missing[0]}", file=sys.stderr)
        return 2
    done, skipped, failed, kept = 0, [], [], []
    for path, rel in tqdm(files, desc="restoring", unit="file", disable=args.quiet or len(files) < 2):
        ext = os.path.splitext(path)[1].lower()
        stem = os.path.splitext(rel)[0]
        target = os.path.join(args.out, stem + (".mp4" if ext in VIDEO_EXTS else ".png"))
        if ext in IMAGE_EXTS + VIDEO_EXTS and os.path.exists(target) and not args.overwrite:
            kept.append(target)
            continue
        try:
            if ext in IMAGE_EXTS:
                try:
                    rgb = read_photo(path)
                except InferenceError as e:
                    failed.append((path, str(e)))
                    continue
                out = restore_image(restorer, rgb, locator, mask, args.compose)
                _note_faces(locator, path)
                write_image(target, out)
                if args.compare:
                    left = cv2.resize(rgb, (out.shape[1], out.shape[0]),
                                      interpolation=cv2.INTER_NEAREST)
                    write_image(os.path.join(args.out, stem + "_compare.png"),
                                np.concatenate([left, out], axis=1))
                done += 1
            elif ext in VIDEO_EXTS:
                if hasattr(locator, "start_video"):  # smoothed landmarks across frames
                    locator.start_video(_video_fps(path))
                try:
                    n = _restore_video(path, target, restorer, locator, mask, args.compose,
                                       args.quiet)
                finally:
                    if hasattr(locator, "end_video"):
                        locator.end_video()
                if n == 0:
                    failed.append((path, "no frames could be read"))
                else:
                    done += 1
            else:
                skipped.append(path)
        except InferenceError as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # the output folder filled up or went away mid-way
            print(f"error: cannot write {target}: {e}", file=sys.stderr)
            return 2
    print(f"Restored {done} file(s) into {os.path.abspath(args.out)}"
          + (f"; skipped {len(skipped)} non-image file(s) (e.g. {skipped[0]})" if skipped else ""))
    if kept:
        print(f"Kept {len(kept)} existing output(s) (e.g. {kept[0]}); pass --overwrite to "
              "replace them")
    if failed:
        print(f"warning: skipped {len(failed)} image file(s) that cannot be used:",
              file=sys.stderr)
    for path, why in failed[:20]:
        print(f"warning: {path}: {why}", file=sys.stderr)
    if len(failed) > 20:
        print(f"warning: ... and {len(failed) - 20} more", file=sys.stderr)
    return 0 if done or kept or not files else 1


SHIPPED_SEGMENTER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "android_demo_assets", "segmenter", "segmenter_int8.tflite")
"""The occluder segmenter used when a model needs a hole mask and none is given."""


def _locator(args, restorer):
    """How faces are found: the detect/align/paste-back pipeline (default), an OpenCV
    detector file (one square crop a photo), or the centered square (--center)."""
    from tfface.inference import FaceLocator, InferenceError

    det = args.face_detector
    if args.center:
        return FaceLocator(None, center=True)
    if det.lower().endswith((".xml", ".onnx")):
        return FaceLocator(det)
    from tfface.faces import FacePipeline, make_detector
    from tfface.faces.segmenter import OccluderSegmenter

    segmenter = None
    if restorer.spec.task == "inpaint" and args.mask is None:
        path = args.segmenter or SHIPPED_SEGMENTER
        if args.segmenter is None and not os.path.exists(path):
            raise InferenceError(f"the occluder segmenter {path} is missing: pass --mask FILE "
                                 "(white = hole) or --segmenter FILE")
        segmenter = OccluderSegmenter(path)
    return FacePipeline(make_detector(det), segmenter, min_face=args.min_face)


def _video_fps(path: str) -> float:
    import cv2

    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    return float(fps) if 1.0 <= fps <= 240.0 else 25.0


def _note_faces(locator, path: str) -> None:
    """One line per photo whose faces were not all restored (also with --quiet, which
    only hides the progress bars)."""
    report = getattr(locator, "last_report", None)
    if report is None:
        return
    if report.restored < report.found or not report.found:
        print(f"note: {path}: {report.summary()}", file=sys.stderr)


def _restore_video(src: str, dst: str, restorer, locator, mask, compose: bool, quiet: bool) -> int:
    """Restore every frame of a video; returns the number of frames written."""
    import cv2
    from tqdm.auto import tqdm

    from tfface.fileio import atomic_path
    from tfface.inference import restore_image

    cap = cv2.VideoCapture(src)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer = None
    n = 0
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    # The video is written under a temporary name and renamed when complete.
    with atomic_path(dst) as tmp, tqdm(total=total, desc=os.path.basename(src), unit="frame",
                                       disable=quiet) as bar:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            out = restore_image(restorer, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), locator, mask,
                                compose)
            if writer is None:
                writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (out.shape[1], out.shape[0]))
            writer.write(cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            n += 1
            bar.update(1)
        cap.release()
        if writer is not None:
            writer.release()
    return n


if __name__ == "__main__":
    sys.exit(main())
