"""Finding the occluder in aligned face crops with a trained segmenter (restore's hole).

:class:`OccluderSegmenter` loads a ``.tflite`` file or a training folder and answers
``hole(crop)`` (and, for video, ``probability(crop)`` and ``hole_from(probability)``).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from tfface.fileio import has_tflite_header
from tfface.segmenter.model import load_segmenter


class SegmenterError(ValueError):
    """The segmenter file cannot be used; the message says why."""


def face_support(size: int, ellipse: Sequence[float]) -> np.ndarray:
    """float32 ``[size, size]``: 1 inside the ellipse ``(cx, cy, rx, ry)`` (fractions of
    the side, pixel centres at ``(i + 0.5) / size``), 0 outside: the region restore clips
    a found hole to (:attr:`OccluderSegmenter.FACE_SUPPORT`)."""
    cx, cy, rx, ry = (float(v) for v in ellipse)
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size
    return (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0).astype(np.float32)


class OccluderSegmenter:
    """Finds the occluder in aligned face crops: ``hole(crop) -> bool [S, S]``.

    Loads a ``.tflite`` file (run with LiteRT; int8 or float inputs handled from the
    tensors' own quantization parameters) or a training folder of
    :func:`~tfface.segmenter.train.train_segmenter` (Keras). The crop is resized to the
    segmenter's side with an area filter and the probability back to the crop's side
    before the thresholds: above ``threshold`` (0.5) is the hole, and pixels above
    ``edge_threshold`` (0.1) connected to it join it (:meth:`hole_from`).
    """

    FACE_SUPPORT = (0.5, 0.56, 0.42, 0.50)
    """Centre (x, y) and half-axes of the ellipse, in fractions of the aligned crop's
    side, outside which nothing is an occluder (the template's eyes are at y = 0.43,
    its mouth at 0.67, 0.225 of the side apart): the face, its chin and cheeks with a
    margin. Drawn face masks of the held-out families keep all of their pixels inside it
    (training families 99.7 %, hands and phones 97 %, scarves 93 %); what it cuts is
    background and hair beside the head, where a false hole smears the photo."""

    EDGE_THRESHOLD = 0.1
    """Default ``edge_threshold``: pixels above it that touch the confident hole join it
    (:meth:`hole_from`). Measured on 48 faces-hq dev faces with held-out masks at 350 px
    in photos (``benchmarks/photo_inpaint.py --auto-mask --edge-threshold``): the mask was
    gone from 17 faces of 24 instead of 13 at 0.5 (docs/faces.md)."""

    def __init__(self, path: str, threshold: float = 0.5, face_support: bool = True,
                 edge_threshold: float | None = None):
        self.path = path
        self.threshold = float(threshold)
        self.edge_threshold = (min(self.EDGE_THRESHOLD, self.threshold) if edge_threshold is None
                               else float(edge_threshold))
        if not 0.0 < self.edge_threshold <= self.threshold < 1.0:
            raise SegmenterError(f"thresholds must satisfy 0 < edge_threshold "
                                 f"({self.edge_threshold}) <= threshold ({self.threshold}) < 1")
        self.face_support = bool(face_support)
        self._support: dict[int, np.ndarray] = {}
        if os.path.isdir(path):
            try:
                model, cfg = load_segmenter(path)
            except (OSError, ValueError, KeyError) as e:
                raise SegmenterError(f"cannot load the segmenter folder {path}: {e}") from e
            self.size = int(cfg.image_size)
            self._run = lambda x: model(x, training=False).numpy()
            return
        if not os.path.isfile(path):
            raise SegmenterError(f"no such segmenter file: {path}")
        if not has_tflite_header(path):
            raise SegmenterError(f"{path} is not a .tflite file (no TFL3 identifier)")
        try:
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=path, num_threads=2)
            interp.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise SegmenterError(f"{path} cannot be loaded by the LiteRT interpreter "
                                 f"({detail})") from e
        ins, outs = interp.get_input_details(), interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1 or len(ins[0]["shape"]) != 4 \
                or int(ins[0]["shape"][3]) != 3 or int(outs[0]["shape"][-1]) != 1:
            raise SegmenterError(f"{path} is not an occluder segmenter (one RGB image in, "
                                 "one 1-channel probability map out)")
        self.size = int(ins[0]["shape"][1])
        i, o = ins[0], outs[0]

        def run(x):
            if np.issubdtype(i["dtype"], np.integer):
                sc, zp = i["quantization"]
                info = np.iinfo(i["dtype"])
                x = np.clip(np.round(x / sc + zp), info.min, info.max).astype(i["dtype"])
            interp.set_tensor(i["index"], x.astype(i["dtype"]))
            interp.invoke()
            y = interp.get_tensor(o["index"])
            if np.issubdtype(y.dtype, np.integer):
                sc, zp = o["quantization"]
                y = (y.astype(np.float32) - zp) * sc
            return y

        self._run = run

    def probability(self, crop: np.ndarray) -> np.ndarray:
        """float32 ``[S, S]`` occluder probability of a uint8 RGB crop of side ``S``."""
        import cv2

        s = crop.shape[0]
        x = crop
        if s != self.size:
            x = cv2.resize(crop, (self.size, self.size),
                           interpolation=cv2.INTER_AREA if s > self.size else cv2.INTER_LINEAR)
        x = (x.astype(np.float32) / 127.5 - 1.0)[None]
        p = np.asarray(self._run(x), np.float32)[0, :, :, 0]
        if s != self.size:
            p = cv2.resize(p, (s, crop.shape[1]), interpolation=cv2.INTER_LINEAR)
        if self.face_support:
            p = p * self.support(s)
        return p

    def support(self, size: int) -> np.ndarray:
        """float32 ``[S, S]``: 1 inside :attr:`FACE_SUPPORT`, 0 outside."""
        if size not in self._support:
            self._support[size] = face_support(size, self.FACE_SUPPORT)
        return self._support[size]

    def hole(self, crop: np.ndarray) -> np.ndarray:
        """bool ``[S, S]``: True where the occluder is (:meth:`hole_from` its probability)."""
        return self.hole_from(self.probability(crop))

    def hole_from(self, p: np.ndarray, edge_threshold: float | None = None) -> np.ndarray:
        """bool: the hole of a probability map. Pixels above ``threshold``, and, when
        the edge threshold (default: ``self.edge_threshold``) is lower, every pixel above
        it connected to them (hysteresis, 8-connected): the occluder's edge, where the
        segmenter is unsure, joins the hole, while a faint blob on bare skin with no
        confident pixel stays out of it."""
        edge = self.edge_threshold if edge_threshold is None else float(edge_threshold)
        core = p > self.threshold
        if edge >= self.threshold or not core.any():
            return core
        import cv2

        _, labels = cv2.connectedComponents((p > edge).astype(np.uint8), connectivity=8)
        keep = np.unique(labels[core])
        return np.isin(labels, keep[keep > 0])
