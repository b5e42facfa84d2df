"""Turn a folder of ordinary photos into training crops of the template's framing.

:func:`prepare_folder` detects the face of every photo, aligns it to
:data:`tfface.faces.align.TEMPLATE` (the framing of the training crops) and writes the
square crop, so a personal photo collection becomes a folder the folder source reads as
it reads faces-train. Photos with no face, with several faces of similar size (which
one is meant is unclear), or with a face too small for the crop size (it would be
upscaled into a blurry target) are skipped; ``skipped.tsv`` in the output folder lists
each with its reason. Outputs appear atomically; existing outputs are kept, so an
interrupted run is finished by running it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tfface.faces import align as al

SKIP_REASONS = ("unreadable", "no face", "several faces", "too small")


@dataclass
class PrepareResult:
    written: int = 0
    kept: int = 0
    skipped: dict[str, list[str]] = field(default_factory=lambda: {r: [] for r in SKIP_REASONS})
    log_path: str | None = None

    def summary(self) -> str:
        sk = ", ".join(f"{len(v)} {k}" for k, v in self.skipped.items() if v)
        return (f"{self.written} crop(s) written, {self.kept} kept"
                + (f"; skipped {sk} (see {self.log_path})" if sk else ""))


def prepare_folder(raw_dir: str, out_dir: str, detector, *, size: int = 256,
                   min_scale: float = 0.5, second_face_ratio: float = 0.6,
                   progress: bool = True) -> PrepareResult:
    """Detect, align and crop the face of every photo under ``raw_dir`` into ``out_dir``.

    Args:
        size: side of the written crops (PNG).
        min_scale: a face whose native crop side is below ``min_scale * size`` is
            "too small" (the crop would be upscaled more than ``1 / min_scale`` times).
        second_face_ratio: a photo is "several faces" when another face is at least this
            fraction of the largest one's size.
    """
    from tqdm.auto import tqdm

    from tfface.data.sources import IMAGE_EXTENSIONS
    from tfface.data.sources.scan import PhotoError, read_photo
    from tfface.fileio import atomic_write
    from tfface.imageio import write_image

    files = []
    for root, _, names in sorted(os.walk(raw_dir)):
        for n in sorted(names):
            if n.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.relpath(os.path.join(root, n), raw_dir))
    res = PrepareResult()
    os.makedirs(out_dir, exist_ok=True)
    for rel in tqdm(files, unit="photo", disable=not progress):
        target = os.path.join(out_dir, os.path.splitext(rel)[0] + ".png")
        if os.path.exists(target):
            res.kept += 1
            continue
        try:
            rgb = read_photo(os.path.join(raw_dir, rel))
        except PhotoError:
            res.skipped["unreadable"].append(rel)
            continue
        faces = sorted(detector.detect(rgb), key=lambda f: -f.size)
        if not faces:
            res.skipped["no face"].append(rel)
            continue
        if len(faces) > 1 and faces[1].size >= second_face_ratio * faces[0].size:
            res.skipped["several faces"].append(rel)
            continue
        if al.native_size(faces[0].landmarks) < min_scale * size:
            res.skipped["too small"].append(rel)
            continue
        crop, _ = al.align_face(rgb, faces[0].landmarks, size)
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        write_image(target, crop)
        res.written += 1
    lines = [f"{p}\t{r}" for r in SKIP_REASONS for p in res.skipped[r]]
    if lines:
        res.log_path = os.path.join(out_dir, "skipped.tsv")
        atomic_write(res.log_path, "file\treason\n" + "\n".join(lines) + "\n")
    return res
