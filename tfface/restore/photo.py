"""Real photos in, restored photos out: every face found, aligned, restored, pasted back.

:class:`FacePipeline` ties a detector (:mod:`tfface.faces.detect`), the alignment to
the training framing and the paste-back (:mod:`tfface.faces.align`), the occluder
segmenter (:class:`tfface.segmenter.infer.OccluderSegmenter`) and a model (a
:class:`tfface.restore.model.FaceModel`, e.g. a :class:`~tfface.restore.model.Restorer`):

* **Inpainting** (``task == "inpaint"``): each face is aligned at the model's input
  side; the hole is the user's mask (photo resolution, warped into the crop) or, when
  none is given, what the segmenter finds in the crop. Only the hole is replaced: with
  a user mask exactly the mask's pixels; with a found hole, the hole grown by
  ``hole_grow`` px and softened over ``hole_feather`` px (pixels of a 128 px crop, scaled
  with the crop: a 256 px file's hole grows by twice as many of its pixels, so both sizes
  cover the same part of the face). Everything else
  keeps the photo's own pixels at the photo's resolution. A face where the segmenter
  finds no occluder is left as it is (and counted).
* **Super-resolution** (``task == "sr"``): the whole photo is enlarged by the model's
  scale with bicubic interpolation; each face is aligned at the model's input side
  (its LR size), restored by the model and pasted into the enlarged photo with a
  feathered face weight. A face at or above the model's resolution is cut out at its
  own resolution, axis-aligned at integer offsets (no resampling of the photo's pixels);
  one larger than the model's input is never shrunk: the model runs on overlapping
  tiles (:func:`sr_tiles`).

Faces whose box is below ``min_face`` px are left alone and counted; a photo without a
face is returned unchanged (SR: bicubic), and the report says so.

:func:`restore_image` restores one photo through either this path or the square
fallback (:class:`tfface.restore.square.FaceLocator`): both answer ``restore``,
``start_video``/``end_video`` and ``last_report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from tfface.faces import align as al
from tfface.faces.detect import Face
from tfface.restore.model import FaceModel, InferenceError
from tfface.restore.square import FaceLocator

__all__ = ["FacePipeline", "PhotoReport", "TemporalFill", "restore_image", "read_mask"]


@dataclass
class PhotoReport:
    """What happened to one photo."""

    found: int = 0
    restored: int = 0
    small: int = 0
    large: int = 0
    tiled: int = 0
    no_occluder: int = 0
    faces: list[Face] = field(default_factory=list)
    task: str = "inpaint"

    def summary(self) -> str:
        if not self.found:
            return ("no face found: enlarged by bicubic only" if self.task == "sr"
                    else "no face found: copied unchanged")
        parts = [f"{self.restored} of {self.found} face(s) restored"]
        if self.small:
            parts.append(f"{self.small} too small, left alone")
        if self.large:
            parts.append(f"{self.large} larger than max_sr_side, bicubic")
        if self.no_occluder:
            parts.append(f"{self.no_occluder} without an occluder, unchanged")
        return "; ".join(parts)


def _sr_matrix(m: np.ndarray, k: int) -> np.ndarray:
    """Photo → crop matrix at ``k`` times both resolutions (pixel centres kept:
    ``x_k = (x + 0.5) · k - 0.5``)."""
    a = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]], np.float64)
    full = a @ np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(a)
    return full[:2]


class FacePipeline:
    """Restores every face of a photo in place (see the module docstring).

    Args:
        detector: a :class:`tfface.faces.detect.FaceDetector`.
        segmenter: an :class:`~tfface.segmenter.infer.OccluderSegmenter` (needed for
            inpainting without a user mask; the video path also reads its
            ``probability`` and ``hole_from``).
        min_face: faces whose box side is below this (px) are left alone.
        feather: width of the face weight's soft edge, as a fraction of the crop.
        hole_grow, hole_feather: growth and soft edge of a found hole (px of a 128 px
            crop; scaled with the crop side, :func:`tfface.faces.align.crop_px`).
        max_faces: at most this many faces (largest first) are restored per photo.
        max_sr_side: SR faces whose native crop side exceeds this are left to bicubic.
    """

    def __init__(self, detector, segmenter=None, *, min_face: int = 16, feather: float = 0.1,
                 hole_grow: int = 2, hole_feather: int = 2, max_faces: int = 32,
                 max_sr_side: int = 1024):
        self.detector = detector
        self.segmenter = segmenter
        self.min_face = int(min_face)
        self.feather = float(feather)
        self.hole_grow = int(hole_grow)
        self.hole_feather = int(hole_feather)
        self.max_faces = int(max_faces)
        self.max_sr_side = int(max_sr_side)
        self.tracker = None
        self.temporal_fill = True
        self.smoother = None  # superseded by the tracker's smoothing
        self.last_report: PhotoReport | None = None
        self.note: str | None = None

    # -- video -------------------------------------------------------------------------
    def start_video(self, fps: float = 25.0, detect_every: int = 5,
                    temporal_fill: bool = True) -> None:
        """Frames that follow are one clip: faces are tracked across them
        (:class:`tfface.faces.track.FaceTracker`: the detector every ``detect_every``
        frames, a cheap search in between, landmarks smoothed), and each face's hole
        and fill are smoothed in time (:class:`TemporalFill`, unless
        ``temporal_fill`` is False)."""
        from tfface.faces.track import FaceTracker

        self.tracker = FaceTracker(self.detector, every=detect_every, fps=fps,
                                   max_faces=self.max_faces)
        self.temporal_fill = bool(temporal_fill)

    def end_video(self) -> None:
        self.tracker = None

    # -- per photo -------------------------------------------------------------------
    def restore(self, restorer: FaceModel, rgb: np.ndarray, mask: np.ndarray | None = None,
                compose: bool = False) -> tuple[np.ndarray, PhotoReport]:
        """The photo with every face restored (SR: enlarged by the model's scale). With a
        ``mask`` exactly its pixels change, so ``compose`` changes nothing here."""
        spec = restorer.spec
        if mask is not None and mask.shape[:2] != rgb.shape[:2]:
            raise InferenceError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image "
                                 f"is {rgb.shape[1]}x{rgb.shape[0]}; they must match")
        if self.tracker is not None:
            tracks = self.tracker(rgb)
            faces = [t.face for t in tracks]
            states = [t.state if self.temporal_fill else {} for t in tracks]
        else:
            faces = sorted(self.detector.detect(rgb), key=lambda f: -f.size)[: self.max_faces]
            states = [None] * len(faces)
        report = PhotoReport(found=len(faces), faces=faces, task=spec.task)
        if spec.task == "sr":
            k = int(spec.scale)
            out = cv2.resize(rgb, (rgb.shape[1] * k, rgb.shape[0] * k),
                             interpolation=cv2.INTER_CUBIC)
        else:
            out = rgb.copy()
        for face, state in zip(faces, states):
            if face.size < self.min_face:
                report.small += 1
                continue
            # The file whose resolution fits the face (several --model sizes), chosen
            # once here; a tracked face keeps its first choice for inpainting, so its
            # temporal state keeps one crop size.
            model = restorer.for_face(al.native_size(face.landmarks))
            if spec.task == "sr":
                self._sr_face(model, rgb, face, out, report)
            else:
                if state is not None:
                    model = state.setdefault("restorer", model)
                self._inpaint_face(model, rgb, face, mask, out, report, state)
        self.last_report = report
        return out, report

    def _inpaint_face(self, restorer: FaceModel, rgb, face: Face, mask, out,
                      report: PhotoReport, state: dict | None = None) -> None:
        s = int(restorer.spec.input_size)
        # video frames: only the face's part of the frame is shrunk for the crop
        align = _align if state is not None else al.align_face
        crop, m = align(rgb, face.landmarks, s)
        if mask is not None:
            # The crop is resampled from the photo, so the crop pixels on the mask's edge
            # hold part of the occluder: the mask resampled as the photo was (the same
            # filters) says how much, and the model fills every pixel with more than 2 % of
            # it, so a keep-known model does not keep the occluder's edge for the paste
            # back to draw along the mask (a visible seam). Thin strokes on a large face
            # shrink below half a crop pixel and are still found.
            cover, _ = align((np.asarray(mask) > 0).astype(np.float32), face.landmarks, s)
            hole = np.abs(cover) > 0.02
            if not hole.any():
                report.no_occluder += 1
                return
            restored = restorer.restore_face(crop, hole)
            if state is not None and self.temporal_fill:
                restored = TemporalFill.of(state).fill(crop, hole, restored)
            # The user's mask decides exactly which photo pixels change.
            weight = _border_weight(s)
            pasted = al.paste_back(rgb, restored, m, weight)
            inside = mask.astype(bool) & _footprint(m, s, rgb.shape[:2])
            out[inside] = pasted[inside]
            report.restored += 1
            return
        if restorer.spec.decides_hole:  # a blind file: its own segmenter decides what changes
            restored, hole = restorer.restore_face_and_hole(crop)
            if hole.sum() < max(4, 0.001 * s * s):
                report.no_occluder += 1
                return
            # the file's hole is grown already; outside it the crop is the photo's own
            feather = al.crop_px(self.hole_feather, s)
            weight = al.hole_weight(hole, 0, feather) * _border_weight(s)
            if state is not None:
                restored, m, weight = _support(restored, m, weight)
            al.paste_back(out, restored, m, weight, out=out)
            report.restored += 1
            return
        if self.segmenter is None:
            raise InferenceError(f"model {restorer.name} fills holes: pass --mask FILE or an "
                                 "occluder segmenter (--segmenter FILE)")
        temporal = TemporalFill.of(state) if state is not None and self.temporal_fill else None
        if temporal is None:
            hole = self.segmenter.hole(crop)
        else:  # video: the occluder probability averaged over the face's frames
            prob = self.segmenter.probability(crop)
            hole = self.segmenter.hole_from(
                temporal.probability(crop, prob, edge=self.segmenter.edge_threshold))
        if hole.sum() < max(4, 0.001 * s * s):
            report.no_occluder += 1
            return
        grow, feather = al.crop_px(self.hole_grow, s), al.crop_px(self.hole_feather, s)
        grown = al.hole_weight(hole, grow, 0) > 0.5
        restored = restorer.restore_face(crop, grown)
        if temporal is not None:
            restored = temporal.fill(crop, grown, restored)
        weight = al.hole_weight(hole, grow, feather) * _border_weight(s)
        if state is not None:  # video: warp and blend only the hole's part of the crop
            restored, m, weight = _support(restored, m, weight)
        al.paste_back(out, restored, m, weight, out=out)
        report.restored += 1

    def _sr_face(self, restorer: FaceModel, rgb, face: Face, out, report: PhotoReport) -> None:
        spec = restorer.spec
        s, k = int(spec.input_size), int(spec.scale)
        native = al.native_size(face.landmarks)
        if native > self.max_sr_side:
            report.large += 1
            return
        if native >= 0.8 * s:
            # At (or above) the model's resolution, SR reads the photo's own pixels: an
            # axis-aligned crop at integer offsets (centred and sized as the template
            # framing), no resampling before the model nor after it. Warping the face
            # upright first cost 0.2-0.3 dB of face PSNR (benchmarks/restore_sr_quality.py).
            n = max(s, int(np.ceil(native)))
            crop, m = al.native_crop(rgb, face.landmarks, n)
            if n > s:  # never shrink a face below its own resolution: tiles
                restored = sr_tiles(restorer, crop)
                report.tiled += 1
            else:
                restored = restorer.restore_face(crop)
        else:  # a face smaller than the model's input: aligned and enlarged to it
            crop, m = al.align_face(rgb, face.landmarks, s)
            restored = restorer.restore_face(crop)
        weight = al.face_weight(restored.shape[0], self.feather)
        al.paste_back(out, restored, _sr_matrix(m, k), weight, out=out)
        report.restored += 1


def sr_tiles(restorer: FaceModel, crop: np.ndarray, overlap: int | None = None) -> np.ndarray:
    """Super-resolve a square crop larger than the model's input in overlapping tiles.

    Tiles of the model's input side step by ``side - overlap`` (the last one flush with
    the edge); their outputs are blended with tent weights, so no tile edge shows.
    """
    s, k = int(restorer.spec.input_size), int(restorer.spec.scale)
    n = crop.shape[0]
    ov = max(2, s // 4) if overlap is None else int(overlap)
    starts = list(range(0, max(n - s, 0) + 1, s - ov))
    if starts[-1] != n - s:
        starts.append(n - s)
    acc = np.zeros((n * k, n * k, 3), np.float64)
    wsum = np.zeros((n * k, n * k, 1), np.float64)
    ramp = np.minimum(np.arange(s * k) + 0.5, s * k - np.arange(s * k) - 0.5)
    tent = np.clip(ramp / (ov * k / 2.0 + 1e-9), 0.05, 1.0)
    w2 = np.minimum(tent[:, None], tent[None, :])[..., None]
    for y in starts:
        for x in starts:
            out = restorer.restore_face(crop[y:y + s, x:x + s]).astype(np.float64)
            acc[y * k:(y + s) * k, x * k:(x + s) * k] += out * w2
            wsum[y * k:(y + s) * k, x * k:(x + s) * k] += w2
    return np.clip(np.round(acc / wsum), 0, 255).astype(np.uint8)


def _border_weight(size: int, px: int = 2) -> np.ndarray:
    """1 inside the crop, ramping to exactly 0 over its outer ``px`` pixels (so the warp
    back never smears the crop's edge into the photo)."""
    r = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    ramp = np.clip(r / float(px), 0.0, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


def _footprint(m: np.ndarray, size: int, shape) -> np.ndarray:
    """bool photo mask of the pixels the aligned crop covers."""
    inv = al.invert(m)
    ones = np.ones((size, size), np.float32)
    w = cv2.warpAffine(ones, inv, (shape[1], shape[0]), flags=cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return w > 0.5


def _align(rgb: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tfface.faces.align.align_face` on the part of the photo the crop covers
    (plus a margin): the same crop and photo → crop matrix, without shrinking a whole
    video frame when the face is much larger than the crop."""
    m = al.alignment_matrix(landmarks, size)
    h, w = rgb.shape[:2]
    c = al.transform_points(al.invert(m), [[0, 0], [size, 0], [0, size], [size, size]])
    pad = 4.0 / al.matrix_scale(m)
    x0 = int(np.clip(np.floor(c[:, 0].min() - pad), 0, w))
    x1 = int(np.clip(np.ceil(c[:, 0].max() + pad), 0, w))
    y0 = int(np.clip(np.floor(c[:, 1].min() - pad), 0, h))
    y1 = int(np.clip(np.ceil(c[:, 1].max() + pad), 0, h))
    if x1 - x0 < 2 or y1 - y0 < 2 or (x1 - x0) * (y1 - y0) > 0.5 * h * w \
            or x0 == 0 or y0 == 0 or x1 == w or y1 == h:
        return al.align_face(rgb, landmarks, size)  # near the border: reflect as before
    lm = np.asarray(landmarks, np.float64) - [x0, y0]
    crop, m_sub = al.align_face(rgb[y0:y1, x0:x1], lm, size)
    m_full = np.array(m_sub, np.float64)
    m_full[:, 2] -= m_full[:, :2] @ [x0, y0]
    return crop, m_full


def _support(restored: np.ndarray, m: np.ndarray, weight: np.ndarray, margin: int = 3):
    """The square part of a restored crop (with its matrix and weight) that holds every
    non-zero weight plus ``margin`` px, so paste-back warps and blends that part only;
    the photo pixels it changes are the same (the cubic warp reads 2 px around)."""
    ys, xs = np.nonzero(weight > 0)
    size = weight.shape[0]
    if len(ys) == 0:
        return restored, m, weight
    x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, size)
    y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, size)
    side = max(x1 - x0, y1 - y0)
    if side >= 0.8 * size:
        return restored, m, weight
    x0, y0 = min(x0, size - side), min(y0, size - side)
    m2 = np.array(m, np.float64)
    m2[:, 2] -= [x0, y0]
    return (restored[y0:y0 + side, x0:x0 + side], m2,
            weight[y0:y0 + side, x0:x0 + side])


class TemporalFill:
    """Smooths one face's hole and fill across the frames of a video.

    The segmenter's occluder probability and the model's restored crop are averaged
    over time in the face's aligned coordinates (exponential moving averages), so a
    still face keeps a steady hole and fill instead of one that boils from frame to
    frame with the sensor noise. Each average adapts to change: ``rate`` rises towards
    1 as the aligned crop outside the hole differs from the previous frame's (mean
    absolute difference of 16 x 16 grey thumbnails, levels), and a difference above
    ``cut`` (a scene cut, a face swapped, a jump the tracker followed) starts afresh.

    Args:
        prob_rate: weight of the new frame in the probability average (still face).
        fill_rate: weight of the new frame in the fill average (still face).
        change_scale: crop change (levels) at which the weights reach 1.
        cut: crop change (levels) that resets both averages.
    """

    def __init__(self, prob_rate: float = 0.3, fill_rate: float = 0.2,
                 change_scale: float = 12.0, cut: float = 24.0):
        self.prob_rate, self.fill_rate = float(prob_rate), float(fill_rate)
        self.change_scale, self.cut = float(change_scale), float(cut)
        self._thumb: np.ndarray | None = None
        self._known: np.ndarray | None = None
        self._prob: np.ndarray | None = None
        self._fill: np.ndarray | None = None
        self.change = 0.0

    @classmethod
    def of(cls, state: dict) -> "TemporalFill":
        """The smoother kept in a track's ``state`` (made on first use)."""
        if "temporal_fill" not in state:
            state["temporal_fill"] = cls()
        return state["temporal_fill"]

    def _observe(self, crop: np.ndarray, hole: np.ndarray | None) -> bool:
        """Compare ``crop`` with the previous frame's; False when the averages restart."""
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        thumb = cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
        known = None
        if hole is not None:
            k = cv2.resize(hole.astype(np.float32), (16, 16), interpolation=cv2.INTER_AREA)
            known = k < 0.05
        prev, prev_known = self._thumb, self._known
        self._thumb = thumb
        if known is not None:
            self._known = known
        if prev is None:
            self.change = 0.0
            return False
        sel = np.ones_like(thumb, bool)
        for k in (known, prev_known):
            if k is not None:
                sel &= k
        if sel.sum() < 16:
            sel[:] = True
        self.change = float(np.abs(thumb - prev)[sel].mean())
        return self.change <= self.cut

    def _rate(self, still: float) -> float:
        return float(np.clip(still + self.change / self.change_scale, still, 1.0))

    def probability(self, crop: np.ndarray, prob: np.ndarray, edge: float = 0.5) -> np.ndarray:
        """This frame's occluder probability, averaged with the previous frames'.

        ``edge``: the lowest probability that can join the hole (the segmenter's
        ``edge_threshold``); the change between frames is measured only where the previous
        average is below it, so an occluder's uncertain rim, which the hole takes, does not
        count as the face moving."""
        keep = self._observe(crop, self._prob > edge if self._prob is not None else None)
        if not keep or self._prob is None or self._prob.shape != prob.shape:
            self._prob, self._fill = prob.astype(np.float32), None
        else:
            a = self._rate(self.prob_rate)
            self._prob = a * prob + (1 - a) * self._prob
        return self._prob

    def fill(self, crop: np.ndarray, hole: np.ndarray, restored: np.ndarray) -> np.ndarray:
        """This frame's restored crop, averaged with the previous frames' (uint8)."""
        if self._prob is None:  # a user's mask: no probability step observed the crop
            if not self._observe(crop, hole):
                self._fill = None
        r = restored.astype(np.float32)
        if self._fill is None or self._fill.shape != r.shape:
            self._fill = r
        else:
            a = self._rate(self.fill_rate)
            self._fill = a * r + (1 - a) * self._fill
        return np.clip(np.round(self._fill), 0, 255).astype(np.uint8)


def restore_image(
    restorer: FaceModel,
    rgb: np.ndarray,
    locator: FacePipeline | FaceLocator,
    mask: np.ndarray | None = None,
    compose: bool = False,
) -> np.ndarray:
    """Restore the faces in a photo and paste them back.

    ``locator`` is a :class:`FacePipeline` (every face detected, aligned to the training
    framing, restored and pasted back with a feathered weight; with a mask, only the
    mask's pixels change) or a :class:`~tfface.restore.square.FaceLocator` (one square
    crop).

    Inpainting keeps the photo's size; ``compose`` keeps every pixel outside the hole
    (needs ``mask``). Super-resolution returns the photo enlarged by the model's
    scale (bicubic outside the face).
    """
    if mask is not None and mask.shape[:2] != rgb.shape[:2]:
        raise InferenceError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}; they must match")
    if compose and mask is None:
        raise InferenceError("--compose needs --mask (it keeps the pixels outside the hole)")
    return locator.restore(restorer, rgb, mask, compose)[0]


def read_mask(path: str) -> np.ndarray:
    """A user mask image as a boolean array (white/non-zero = hole)."""
    m = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InferenceError(f"cannot read the mask image {path}")
    return m > 127
