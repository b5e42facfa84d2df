"""Super-resolution of whole photos: any-size images in tiles, faces at their own scale.

The real-photo path (:class:`tfface.restore.photo.FacePipeline`) enlarges a photo by bicubic
interpolation and runs the model on each face. This module holds the parts a model
trained on faces at every scale (``data.sr_crop``, see :mod:`tfface.data.pipeline`)
needs on top of it:

* :func:`sr_image` — any ``H x W`` image super-resolved by a fixed-input model in
  overlapping tiles blended with tent weights (the square :func:`~tfface.restore.photo.sr_tiles`
  generalised to rectangles and to images smaller than a tile), e.g. the background of
  a photo.
* :func:`sr_face_native` — one face cut out axis-aligned at the photo's own
  resolution (at least the model's input side, never enlarged by a warp), super-resolved
  by :func:`sr_image` and pasted with the feathered face weight over the face's own
  framing square only (the rest of a crop larger than the face is the model's context).
* :class:`NativeSRPipeline` — a :class:`~tfface.restore.photo.FacePipeline` that sends every
  face through :func:`sr_face_native` and, with ``background="model"``, enlarges the
  rest of the photo with the model too instead of bicubic.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from tfface.faces import align as al
from tfface.faces.detect import Face
from tfface.restore.model import FaceModel
from tfface.restore.photo import FacePipeline, PhotoReport

__all__ = ["sr_image", "tile_starts", "face_only_weight", "sr_face_native",
           "NativeSRPipeline"]

BACKGROUNDS = ("bicubic", "model")


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Offsets of tiles of side ``tile`` that cover ``0..n`` stepping by ``tile - overlap``,
    the last one flush with the end (``[0]`` when ``n <= tile``)."""
    if tile <= overlap:
        raise ValueError(f"the overlap ({overlap}) must be smaller than the tile ({tile})")
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile + 1, tile - overlap))
    if starts[-1] != n - tile:
        starts.append(n - tile)
    return starts


def _tent(side: int, ramp: float) -> np.ndarray:
    """1-D blend weight of a tile output: rising over ``ramp`` px from each edge, floor 0.05."""
    r = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5)
    return np.clip(r / (ramp + 1e-9), 0.05, 1.0)


def sr_image(restorer: FaceModel, rgb: np.ndarray, overlap: int | None = None,
             progress: Callable[[int], None] | None = None, mirror: bool = False) -> np.ndarray:
    """``rgb`` (uint8 ``[H, W, 3]``, any size) enlarged ``k`` times by ``restorer``.

    The model runs on tiles of its input side ``s`` stepping by ``s - overlap``
    (default ``s // 4``); the outputs are blended with tent weights so no tile edge
    shows. An image smaller than a tile is reflected to the tile's size first and its
    own part of the output kept. ``progress(n)`` is called after each tile.
    ``mirror``: every tile is also run mirrored left to right and the two outputs are
    averaged (a self-ensemble: twice the model calls; docs/faces.md measures it).

    Returns:
        uint8 ``[H·k, W·k, 3]``.
    """
    s, k = int(restorer.spec.input_size), int(restorer.spec.scale)
    ov = max(2, s // 4) if overlap is None else int(overlap)
    h, w = rgb.shape[:2]
    ph, pw = max(0, s - h), max(0, s - w)
    src = cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_REFLECT_101) if ph or pw else rgb
    hh, ww = src.shape[:2]
    acc = np.zeros((hh * k, ww * k, 3), np.float64)
    wsum = np.zeros((hh * k, ww * k, 1), np.float64)
    tent = _tent(s * k, ov * k / 2.0)
    w2 = np.minimum(tent[:, None], tent[None, :])[..., None]
    for y in tile_starts(hh, s, ov):
        for x in tile_starts(ww, s, ov):
            tile = src[y:y + s, x:x + s]
            out = restorer.restore_face(tile).astype(np.float64)
            if mirror:
                out += restorer.restore_face(np.ascontiguousarray(tile[:, ::-1]))[:, ::-1]
                out *= 0.5
            acc[y * k:(y + s) * k, x * k:(x + s) * k] += out * w2
            wsum[y * k:(y + s) * k, x * k:(x + s) * k] += w2
            if progress is not None:
                progress(1)
    big = np.clip(np.round(acc / wsum), 0, 255).astype(np.uint8)
    return big[:h * k, :w * k]


def count_tiles(h: int, w: int, side: int, overlap: int | None = None) -> int:
    """How many tiles :func:`sr_image` runs for an ``h x w`` image (model calls: twice
    that with ``mirror``)."""
    ov = max(2, side // 4) if overlap is None else int(overlap)
    return len(tile_starts(max(h, side), side, ov)) * len(tile_starts(max(w, side), side, ov))


def _translation_matrix(m: np.ndarray, k: int) -> np.ndarray:
    """Photo → crop matrix at ``k`` times both resolutions (pixel centres kept)."""
    a = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]], np.float64)
    return (a @ np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(a))[:2]


def face_only_weight(side: int, face_side: float, feather: float = 0.1) -> np.ndarray:
    """float32 ``[side, side]`` paste weight of a restored crop larger than its face:
    :func:`tfface.faces.align.face_weight` over the face's own ``face_side`` square in the
    middle (the template framing), 0 on the rest, which the model only saw as context."""
    f = int(np.ceil(face_side - 1e-6))
    if f >= side:
        return al.face_weight(side, feather)
    f += (side - f) % 2  # centred at integer offsets
    weight = np.zeros((side, side), np.float32)
    o = (side - f) // 2
    weight[o:o + f, o:o + f] = al.face_weight(f, feather)
    return weight


def sr_face_native(restorer: FaceModel, rgb: np.ndarray, face: Face, out: np.ndarray,
                   feather: float = 0.1, overlap: int | None = None,
                   progress: Callable[..., object] | None = None, mirror: bool = False) -> int:
    """Super-resolve one face at the photo's own resolution and paste it into ``out``
    (the photo enlarged ``k`` times, modified in place).

    The crop is axis-aligned at integer offsets, centred and sized as the template
    framing (:func:`tfface.faces.align.native_crop`) but at least the model's input side:
    a small face is not enlarged before the model (the model sees it with more of the
    photo around it), a large one is tiled. Only the face's own framing square is
    pasted (:func:`face_only_weight`): the photo around a small face is context for the
    model, not replaced by it. ``progress`` is a tqdm-like factory
    (``progress(total=tiles, desc=...)`` returning an object with ``update(n)`` and
    ``close()``). ``mirror``: as :func:`sr_image`. Returns the number of tiles run.
    """
    native = al.native_size(face.landmarks)
    restorer = restorer.for_face(native)  # several files: the one that fits the face
    s, k = int(restorer.spec.input_size), int(restorer.spec.scale)
    n = max(s, int(np.ceil(native)))
    tiles = count_tiles(n, n, s, overlap)
    crop, m = al.native_crop(rgb, face.landmarks, n)
    bar = progress(total=tiles, desc=f"face {n} px") if progress is not None else None
    try:
        restored = sr_image(restorer, crop, overlap, bar.update if bar is not None else None,
                            mirror)
    finally:
        if bar is not None:
            bar.close()
    weight = face_only_weight(restored.shape[0], native * k, feather)
    al.paste_back(out, restored, _translation_matrix(m, k), weight, out=out)
    return tiles


class NativeSRPipeline(FacePipeline):
    """:class:`~tfface.restore.photo.FacePipeline` for models trained on faces at every scale:
    every SR face goes through :func:`sr_face_native` (no face is warped up to the
    model's input side), and ``background="model"`` enlarges the rest of the photo
    with the model (:func:`sr_image`) instead of bicubic. Inpainting is unchanged.

    Args:
        background: ``bicubic`` (the default, as FacePipeline) or ``model``.
        overlap: tile overlap in LR px (default a quarter of the model's input side).
        progress: tqdm-like factory for the tiles of each face (and of the background
            with ``background="model"``), e.g. ``functools.partial(tqdm, delay=1,
            leave=False)`` shows a bar only for a face that takes more than a second.
        mirror: run every face tile mirrored too and average the two outputs
            (:func:`sr_image`): 0.08-0.21 dB more on the face for twice the model time.
        **kwargs: as :class:`~tfface.restore.photo.FacePipeline`.
    """

    def __init__(self, detector, segmenter=None, *, background: str = "bicubic",
                 overlap: int | None = None, progress: Callable[..., object] | None = None,
                 mirror: bool = False, **kwargs):
        super().__init__(detector, segmenter, **kwargs)
        if background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got '{background}'")
        self.background = background
        self.overlap = overlap
        self.progress = progress
        self.mirror = bool(mirror)

    def restore(self, restorer: FaceModel, rgb: np.ndarray, mask: np.ndarray | None = None,
                compose: bool = False) -> tuple[np.ndarray, PhotoReport]:
        if restorer.spec.task != "sr" or self.background == "bicubic":
            return super().restore(restorer, rgb, mask, compose)
        if self.tracker is not None:  # video: the pipeline's tracker
            faces = [t.face for t in self.tracker(rgb)]
        else:
            faces = sorted(self.detector.detect(rgb), key=lambda f: -f.size)[: self.max_faces]
        report = PhotoReport(found=len(faces), faces=faces, task="sr")
        bar = None
        if self.progress is not None:
            s = int(restorer.spec.input_size)
            bar = self.progress(total=count_tiles(*rgb.shape[:2], s, self.overlap),
                                desc="background")
        try:
            out = sr_image(restorer, rgb, self.overlap, bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        for face in faces:
            if face.size < self.min_face:
                report.small += 1
                continue
            self._sr_face(restorer, rgb, face, out, report)
        self.last_report = report
        return out, report

    def _sr_face(self, restorer: FaceModel, rgb, face: Face, out, report: PhotoReport) -> None:
        if al.native_size(face.landmarks) > self.max_sr_side:
            report.large += 1
            return
        if sr_face_native(restorer, rgb, face, out, self.feather, self.overlap,
                          self.progress, self.mirror) > 1:
            report.tiled += 1
        report.restored += 1
