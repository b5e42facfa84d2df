"""Restore faces in photos, folders and videos with a trained model.

Examples::

    python -m pipelines.restore photo.jpg                  # the shipped V-Nets and segmenter
    python -m pipelines.restore photo.jpg --look fidelity  # the 128 px V-Net alone
    python -m pipelines.restore small.jpg --sr 4           # x4, the realism SR file
    python -m pipelines.restore photo.jpg --model runs/demo
    python -m pipelines.restore photos/ clip.mp4 --model runs/demo/model_int8_mixed.tflite
    python -m pipelines.restore photo.jpg --model runs/demo --mask hole.png --compose --compare

Outputs keep each input's relative path and name, with its extension joined to the
name so that ``a.png``, ``a.jpg``, ``a.PNG`` and ``a.mp4`` of one folder never share
an output: ``photos/a.jpg`` → ``OUT/a_jpg.png`` (and ``a_jpg_compare.png``),
``clip.mov`` → ``OUT/clip_mov.mp4``. Images are written as PNG; videos as H.264 MP4
at the input's frame rate with its audio (:mod:`tfface.restore.video`; MPEG-4 Part 2 without
audio, with a note, when ffmpeg cannot be used), under a temporary name, and kept only
when the written file reads back with every frame (a full disk makes a writer drop
frames and the index). Files that are neither images nor videos are skipped with a note; image
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
from tfface.cli import prog_name
from tfface.shipped import LOOKS, SR_REALISM_MODELS, default_models, sr_model

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


def output_stem(rel: str) -> str:
    """Output path (without suffix) of the input at relative path ``rel``:
    ``sub/a.jpg`` → ``sub/a_jpg``. The extension keeps its case and joins the name, so
    distinct inputs get distinct outputs: no known extension holds ``_``, so the last
    ``_`` part of an output name is always its input's extension."""
    stem, ext = os.path.splitext(rel)
    return f"{stem}_{ext[1:]}" if ext else stem


def output_path(out_dir: str, rel: str) -> str:
    """Where the result of the input at relative path ``rel`` is written."""
    ext = os.path.splitext(rel)[1].lower()
    return os.path.join(out_dir, output_stem(rel) + (".mp4" if ext in VIDEO_EXTS else ".png"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.restore", "tfface-restore"),
        description="Restore the face in images, folders of images and videos with a run's "
        "Keras model or a .tflite file (same pre/post-processing for both).",
        epilog="Writes into --out DIR (default restored/): NAME.png for each image and "
        "NAME.mp4 for each video (NAME: the input's name; inputs from folders keep their "
        "sub-folders), plus NAME_compare.png with --compare. Existing outputs are kept "
        "unless --overwrite is given.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) and video files")
    p.add_argument("--model", action="append", metavar="RUN_DIR|FILE.tflite",
                   help="a run directory (its best Keras weights) or a .tflite file with its "
                   "card; repeat it for one kind of model at several sizes (e.g. --model "
                   "vnet/... --model vnet256/...): each face goes to the smallest file whose "
                   "input covers the face (default: the shipped V-Nets that remove occlusions, "
                   "as --look says, with the shipped occluder segmenter finding them)")
    p.add_argument("--look", choices=LOOKS, metavar="|".join(LOOKS),
                   help="which shipped files restore faces when --model is not given. With "
                   "--sr 4: realism (the default) is the x4 file fine-tuned for detail "
                   "(sharper eyes, skin and hair, about 0.1-0.2 dB lower PSNR), fidelity the "
                   "one trained for PSNR; x2 has one file. Occlusion removal: realism (the "
                   "default for images): faces whose aligned crop "
                   "is larger than 128 px go to the 256 px V-Net fine-tuned for detail (a "
                   "mouth line, lips, eyes; not the person's own), smaller ones to the 128 px "
                   "V-Net. fidelity (the default for videos, where the 256 px file would cost "
                   "about 17 ms more per large face and frame): every face to the 128 px V-Net "
                   "trained for PSNR, smoother fills. On 350 px faces the realism fills are "
                   "sharper, 0.1 dB better with a given --mask and 0.2 dB worse with a found "
                   "hole (face masks: 0.7 / 1.1 dB worse)")
    p.add_argument("--sr", type=int, choices=(2, 4), metavar="2|4",
                   help="enlarge the photo x2 or x4, each face by the shipped face "
                   "super-resolution file of that scale (srgan_x2; x4: srgan_realism, or "
                   "srgan with --look fidelity) and the rest by "
                   "bicubic; with --model, the files must be SR files of that scale")
    p.add_argument("--sr-mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="super-resolution: also run each face mirrored left to right and "
                   "average the two results (+0.08 to +0.21 dB on faces in photos, twice the "
                   "model time: a 1024x768 photo with a 200 px face takes about 1.7-1.9 s "
                   "instead of 0.9-1.0; default: on for x2 photos, off for x4, which keeps "
                   "its one-face photo well under 2 s, and off for videos)")
    p.add_argument("--out", default="restored", metavar="DIR",
                   help="output folder (default: restored/)")
    p.add_argument("--mask", metavar="FILE",
                   help="hole mask image (white = hole), same size as the input image")
    p.add_argument("--compose", action="store_true",
                   help="paste restored pixels only inside the hole (needs --mask)")
    p.add_argument("--compare", action="store_true",
                   help="also write NAME_compare.png: input and result side by side")
    p.add_argument("--face-detector", metavar="NAME|FILE", default="auto",
                   help="how faces are found: auto (default: BlazeFace at two scales with a "
                   "second look that drops what is not a face; blazeface is the same), "
                   "auto+mtcnn (auto plus the faces MTCNN finds that auto missed, each "
                   "confirmed by BlazeFace's wide looks: more small and covered faces for "
                   "about 0.2 s more a photo), mtcnn, "
                   "mtcnn+blazeface (every face either finds), a BlazeFace short-range "
                   ".tflite file, or an OpenCV detector file (Haar cascade .xml "
                   "or YuNet .onnx: one square crop a photo, no alignment)")
    p.add_argument("--center", action="store_true",
                   help="no detection: restore the centered square of each image")
    p.add_argument("--segmenter", metavar="FILE",
                   help="occluder segmenter (.tflite) that finds the hole when a model needs "
                   "one and --mask is not given (default: the shipped one)")
    p.add_argument("--min-face", type=int, default=16, metavar="PX",
                   help="faces smaller than this (box side, px) are left alone and counted "
                   "(default: 16)")
    p.add_argument("--detect-every", type=int, default=5, metavar="K",
                   help="videos: run the face detector every K frames and follow the faces "
                   "in between (1: detect in every frame; default: 5)")
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

    from tfface.data.sources.scan import PhotoError, read_photo
    from tfface.fileio import (OutputDirError, check_writable_dir, display_name,
                               regular_file_problem)
    from tfface.imageio import write_image
    from tfface.restore.model import InferenceError, Restorer
    from tfface.restore.photo import read_mask, restore_image

    try:
        restorer = Restorer.load_many(model_paths(args))
        _check_sr_options(args, restorer)
        video_restorer = _video_restorer(args, restorer)
        locator = _locator(args, restorer)
        mask = read_mask(args.mask) if args.mask else None
        if args.detect_every < 1:
            raise InferenceError(f"--detect-every must be at least 1, got {args.detect_every}")
        if args.compose and mask is None:
            raise InferenceError("--compose needs --mask (it keeps the pixels outside the hole)")
        check_writable_dir(args.out, what="output folder",
                           hint="Pass a folder you can write to with --out DIR.")
    except (InferenceError, FileNotFoundError, OutputDirError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if locator.note:
        print(f"note: {locator.note}", file=sys.stderr)

    said: set[str] = set()

    def notes(text: str) -> None:  # a note said once a run (e.g. the video fallback)
        if text not in said:
            said.add(text)
            print(f"note: {text}", file=sys.stderr)

    files = list(_inputs(args.inputs))
    missing = [display_name(p) for p, _ in files if not os.path.lexists(p)]
    if missing:
        print(f"error: no such file: {missing[0]}", file=sys.stderr)
        return 2
    done, unchanged, skipped, failed, kept = 0, 0, [], [], []
    written: dict[tuple[int, int], str] = {}  # (device, inode) of each output of this run
    for path, rel in tqdm(files, desc="restoring", unit="file",
                          disable=args.quiet or len(files) < 2):
        ext = os.path.splitext(path)[1].lower()
        stem = output_stem(rel)
        odd = regular_file_problem(path) if ext in IMAGE_EXTS + VIDEO_EXTS else None
        if odd:  # a named pipe would block forever; an undecodable name cannot be written
            failed.append((display_name(path), odd))
            continue
        target = output_path(args.out, rel)
        if ext in IMAGE_EXTS + VIDEO_EXTS and os.path.exists(target):
            # Two inputs given under the same relative name (e.g. a/x.png and b/x.png as
            # separate arguments), or a case-insensitive output disk: never overwrite an
            # output of this run, and never call it an earlier result.
            st = os.stat(target)
            if (st.st_dev, st.st_ino) in written:
                failed.append((path, f"its output {target} is already the output of "
                                     f"{written[(st.st_dev, st.st_ino)]}; rename one of them"))
                continue
            if not args.overwrite:
                kept.append(target)
                continue
        try:
            if ext in IMAGE_EXTS:
                try:
                    rgb = read_photo(path)
                except PhotoError as e:
                    failed.append((path, str(e)))
                    continue
                out = restore_image(restorer, rgb, locator, mask, args.compose)
                _note_faces(locator, path)
                changed = _restored_any(locator, rgb, out)
                write_image(target, out)
                st = os.stat(target)
                written[(st.st_dev, st.st_ino)] = path
                if args.compare:
                    left = cv2.resize(rgb, (out.shape[1], out.shape[0]),
                                      interpolation=cv2.INTER_NEAREST)
                    write_image(os.path.join(args.out, stem + "_compare.png"),
                                np.concatenate([left, out], axis=1))
                if changed:
                    done += 1
                else:
                    unchanged += 1
            elif ext in VIDEO_EXTS:
                if video_restorer is not restorer and args.sr:
                    notes("videos are restored with --look fidelity (srgan/, trained for "
                          "PSNR) unless --look realism is given")
                elif video_restorer is not restorer:
                    notes("videos are restored with --look fidelity (the 128 px V-Net) unless "
                          "--look realism is given: the 256 px file would cost about 17 ms "
                          "more per large face and frame")
                n = _restore_video(path, target, video_restorer, locator, mask, args, notes)
                if n == 0:
                    failed.append((path, "no frames could be read"))
                else:
                    st = os.stat(target)
                    written[(st.st_dev, st.st_ino)] = path
                    done += 1
            else:
                skipped.append(display_name(path))
        except InferenceError as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # the output folder filled up or went away mid-way
            print(f"error: cannot write {target}: {e}; it was not kept", file=sys.stderr)
            if done or unchanged:
                print(f"Wrote {done + unchanged} file(s) into {os.path.abspath(args.out)} "
                      "before the error; run the same command again to finish.",
                      file=sys.stderr)
            return 2
    _print_summary(args.out, restorer.spec.task, done, unchanged, skipped, kept, failed)
    return 0 if done or unchanged or kept or not files else 1


def _print_summary(out_dir, task, done, unchanged, skipped, kept, failed) -> None:
    """The count line, and one warning per input that could not be used (20 at most)."""
    print(f"Restored {done} file(s) into {os.path.abspath(out_dir)}"
          + (f"; {_unchanged_phrase(unchanged, task)}" if unchanged else "")
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


def model_paths(args) -> list[str]:
    """The model files to load: ``--model`` (any number), else the shipped SR file of
    ``--sr``'s scale and ``--look``, else the shipped occlusion-removal V-Nets of
    ``--look``."""
    look = getattr(args, "look", None)
    if look and args.model:
        raise ValueError("--look chooses among the shipped files; it cannot be combined "
                         "with --model")
    if args.model:
        return list(args.model)
    if args.sr and look and args.sr not in SR_REALISM_MODELS:
        raise ValueError(f"--look chooses between the two x4 SR files; x{args.sr} has one "
                         "file (leave out --look)")
    if args.sr:
        return [sr_model(args.sr, look or LOOKS[0])]
    return default_models(look or LOOKS[0])


def _check_sr_options(args, restorer) -> None:
    """``--sr`` needs an SR file of that scale; ``--sr-mirror`` faces restored by an SR file.

    Raises:
        InferenceError: one line saying which option does not fit.
    """
    from tfface.restore.model import InferenceError

    if args.sr and (restorer.spec.task != "sr" or restorer.spec.scale != args.sr):
        raise InferenceError(f"--sr {args.sr}: {restorer.name} is not a x{args.sr} "
                             "super-resolution file (leave out --model to use the shipped one)")
    if args.sr_mirror is not None and (
            restorer.spec.task != "sr" or args.center
            or args.face_detector.lower().endswith((".xml", ".onnx"))):
        raise InferenceError("--sr-mirror applies to faces found in a photo by a "
                             "super-resolution file (--sr 2|4 without --center or an "
                             "OpenCV detector file, which restore one square a photo)")


def _restored_any(locator, rgb, out) -> bool:
    """Whether restoring changed a photo: a face was restored (face path), or the
    square's output differs from the photo (a square without an occluder is copied)."""
    import numpy as np

    report = locator.last_report
    if report is not None:
        return report.restored > 0
    return out.shape != rgb.shape or not np.array_equal(out, rgb)


def _unchanged_phrase(n: int, task: str) -> str:
    """How the count line names photos in which nothing was restored."""
    if task == "sr":
        return f"{n} photo(s) with no face restored were enlarged by bicubic only"
    return f"{n} photo(s) with nothing to restore were copied unchanged"


def _locator(args, restorer):
    """The face finder of these arguments (:func:`tfface.restore.locate.make_locator`);
    a large SR face whose tiles take more than a second shows a progress bar."""
    from functools import partial

    from tqdm.auto import tqdm

    from tfface.restore.locate import make_locator

    bar = None if args.quiet else partial(tqdm, unit="tile", delay=1.0, leave=False)
    return make_locator(restorer, args.face_detector, center=args.center,
                        has_mask=args.mask is not None, segmenter=args.segmenter,
                        min_face=args.min_face, progress=bar,
                        sr_mirror=args.sr_mirror)


def _video_restorer(args, restorer):
    """The restorer of videos: the images' one, except with the shipped files and no
    ``--look``, where videos get the fidelity file (the 128 px V-Net: 25 frames/s and
    fills that change less from frame to frame; x4 SR: ``srgan/``, as the frame-to-frame
    steadiness of the realism file is not measured)."""
    from tfface.restore.model import Restorer, RestorerLadder

    if args.model or args.look:
        return restorer
    if args.sr:  # a scale with a realism file: its fidelity file for videos
        if args.sr not in SR_REALISM_MODELS:
            return restorer
        return Restorer.load(sr_model(args.sr, "fidelity"))
    if not isinstance(restorer, RestorerLadder):
        return restorer
    return restorer.restorers[0]


def _restore_video(src: str, dst: str, restorer, locator, mask, args, notes) -> int:
    """Restore every frame of a video (:func:`tfface.restore.video.restore_clip`). x2's
    mirror averaging is off for videos unless ``--sr-mirror`` asks for it (twice the
    model time a frame)."""
    from tfface.restore.video import restore_clip

    default_on = getattr(locator, "mirror", False) and args.sr_mirror is None
    if default_on:
        locator.mirror = False
    try:
        return restore_clip(src, dst, restorer, locator, mask, args.compose,
                            detect_every=args.detect_every, quiet=args.quiet, notes=notes)
    finally:
        if default_on:
            locator.mirror = True


def _note_faces(locator, path: str) -> None:
    """One line per photo whose faces were not all restored (also with --quiet, which
    only hides the progress bars)."""
    report = locator.last_report
    if report is None:
        return
    if report.restored < report.found or not report.found:
        print(f"note: {path}: {report.summary()}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
