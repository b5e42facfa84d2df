"""Does restoration help face recognition? Verification of damaged and restored faces.

A face-recognition model turns each face into an embedding; two photos are called the
same person when their embeddings are similar enough. This module measures how well
that works on restored faces, by the protocol of the research:

* **probes** are the eval faces of a folder, in each *variant*: clean, damaged, a
  classical baseline (OpenCV Navier–Stokes given the true mask; bicubic for super-
  resolution) and each model's restoration;
* the **gallery** is every clean photo of the folder whose person is known
  (``IDENTITIES.csv`` beside the photos: ``file,<person>``, one line per photo);
* **genuine pairs** are a probe against a *different* photo of the same person (a
  photo is never compared with itself), **impostor pairs** a probe against the photos
  of other people;
* the decision threshold is chosen once, on clean-vs-clean impostor pairs, as the
  lowest similarity at which at most ``target_fpr`` (1 %) of them are accepted; every
  variant is judged at that threshold: TPR (genuine pairs accepted) and FPR (impostor
  pairs accepted). ``accuracy`` is the balanced verification accuracy
  ((TPR + TNR) / 2) at a second threshold fixed on clean pairs, the one that
  maximizes it there (the LFW-style operating point).

A restorer helps recognition when its TPR is above the damaged input's; the closer to
clean, the better.

The embedder shipped with the ``identity`` extra is dlib's ResNet face descriptor
(:class:`DlibEmbedder`, ``pip install 'tfface[identity]'``): the five-point landmark
model finds the eyes and nose inside a fixed face box of the eval crop
(:data:`FACE_BOX`), ``dlib.get_face_chip`` aligns a 150 px chip, and the network maps it to 128
numbers; faces are compared by Euclidean distance. Only the model files inside the
installed ``face_recognition_models`` package are loaded, never a file a user names:
dlib's ``.dat`` format is a native deserializer, so a crafted file is untrusted input.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import io
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tfface.evaluation import bicubic, nearest_input, opencv_inpaint
from tfface.fileio import open_regular
from tfface.imageio import to_uint8
from tfface.registry import Registry

IDENTITIES_FILE = "IDENTITIES.csv"
"""Default name of the photo-to-person table, looked for in the data folder."""
INSTALL_HINT = "pip install 'tfface[identity]'"
TARGET_FPR = 0.01
MAX_CSV_BYTES = 64 << 20
"""A person table larger than this is refused (a million photos take about 40 MB)."""


class IdentityError(ValueError):
    """A face-recognition evaluation that cannot run (the message is one line)."""


# -- embedders -----------------------------------------------------------------------

def as_uint8_faces(faces: np.ndarray) -> np.ndarray:
    """An ``[N, H, W, 3]`` batch as uint8 RGB: uint8 is kept, floats are read as [-1, 1]."""
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"expected a batch of RGB faces [N, H, W, 3], got shape {faces.shape}")
    return faces if faces.dtype == np.uint8 else to_uint8(faces)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[Na, Nb]`` cosine similarities of two embedding batches."""
    def unit(e):
        e = np.asarray(e, np.float64).reshape(len(e), -1)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    return unit(a) @ unit(b).T


def negative_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[Na, Nb]`` negated Euclidean distances (higher = more alike)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return -np.sqrt(np.maximum(sq, 0.0))


class Embedder:
    """A face-recognition model: ``embed(faces) -> [N, D]`` and a ``similarity``.

    ``faces`` is an ``[N, H, W, 3]`` RGB batch, uint8 or float in [-1, 1]. Subclasses
    set ``name``, ``similarity_name`` and implement :meth:`embed`; ``similarity``
    defaults to cosine.
    """

    name = "embedder"
    similarity_name = "cosine similarity"

    def embed(self, faces: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cosine_similarity(a, b)


FACE_BOX = (0.242, 0.305, 0.727, 0.789)
"""Where dlib's own face detector puts the face in an eval crop (left, top, right, bottom
as fractions of the side): the median box of ``dlib.get_frontal_face_detector()`` on 100
clean 128 px crops of faces-dev (it found one face in each; spread 1.4-2.2 px). The
landmark model was trained on boxes like these; given the whole crop instead, its points
jump by up to 6 px when the face moves by 2 px."""

DLIB_MODELS = {"landmarks": "shape_predictor_5_face_landmarks.dat",
               "descriptor": "dlib_face_recognition_resnet_model_v1.dat"}
"""The two files :class:`DlibEmbedder` loads, from ``face_recognition_models/models``."""


def packaged_dlib_models() -> dict[str, str]:
    """Paths of :data:`DLIB_MODELS` inside the installed ``face_recognition_models``.

    The package is located, not imported (its ``__init__`` needs the deprecated
    ``pkg_resources``); its files are the only model files this module loads.

    Raises:
        IdentityError: the package is not installed or lacks a file.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    roots = list(spec.submodule_search_locations or []) if spec else []
    if not roots:
        raise IdentityError("the dlib face embedder needs the face_recognition_models "
                            f"package (its model files): {INSTALL_HINT}")
    out = {}
    for key, name in DLIB_MODELS.items():
        path = os.path.join(roots[0], "models", name)
        if not os.path.isfile(path):
            raise IdentityError(f"{path} is missing from the installed face_recognition_models "
                                f"package; reinstall it: {INSTALL_HINT}")
        out[key] = path
    return out


def box_landmarks(dlib, predictor, face: np.ndarray, face_box: Sequence[float]):
    """dlib's five landmarks of a contiguous uint8 ``face`` inside the fractional
    rectangle ``face_box`` (left, top, right, bottom) of the crop."""
    h, w = face.shape[:2]
    x0, y0, x1, y1 = face_box
    box = dlib.rectangle(round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
    return predictor(face, box)


class DlibEmbedder(Embedder):
    """dlib's 128-D ResNet face descriptor (99.38 % on LFW by its author's measure).

    Each face is aligned first: the five-point landmark model runs inside the fixed
    rectangle ``face_box`` of the crop (eval crops are face-centred, so no detector
    runs: damaged and restored versions of a face get the same rectangle), and
    ``dlib.get_face_chip`` cuts the ``chip_size`` chip dlib's network was trained on.
    Faces are compared by Euclidean distance (dlib's own rule calls distances
    below 0.6 the same person).

    Raises:
        IdentityError: dlib or its model package is not installed.
    """

    name = "dlib"
    similarity_name = "negated Euclidean distance of dlib descriptors"

    def __init__(self, chip_size: int = 150, padding: float = 0.25, batch_size: int = 32,
                 face_box: Sequence[float] = FACE_BOX):
        try:
            import dlib
        except ImportError:
            raise IdentityError(f"the dlib face embedder needs dlib: {INSTALL_HINT}") from None
        paths = packaged_dlib_models()
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(paths["landmarks"])
        self._descriptor = dlib.face_recognition_model_v1(paths["descriptor"])
        self.chip_size, self.padding, self.batch_size = int(chip_size), float(padding), batch_size
        self.face_box = tuple(float(v) for v in face_box)

    def chips(self, faces: np.ndarray) -> list[np.ndarray]:
        """The aligned ``chip_size`` uint8 chip of each face."""
        out = []
        for face in as_uint8_faces(faces):
            face = np.ascontiguousarray(face)
            shape = box_landmarks(self._dlib, self._landmarks, face, self.face_box)
            out.append(self._dlib.get_face_chip(face, shape, self.chip_size, self.padding))
        return out

    def embed(self, faces: np.ndarray) -> np.ndarray:
        faces = as_uint8_faces(faces)
        out = []
        for i in range(0, len(faces), self.batch_size):
            chips = self.chips(faces[i:i + self.batch_size])
            vectors = self._descriptor.compute_face_descriptor(chips)
            out += [np.asarray(v, np.float32) for v in vectors]
        return np.stack(out) if out else np.zeros((0, 128), np.float32)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return negative_distance(a, b)


EMBEDDING_FORMATS = (".tflite",)
"""Files an embedding model is read from: formats that carry no code. A Keras
``.h5``/``.keras`` file or a SavedModel can hold Lambda layers and custom objects that run
when the file is loaded (``safe_mode`` does not cover legacy ``.h5``), so none is ever
loaded."""

MODEL_FILE_SUFFIXES = EMBEDDING_FORMATS + (".h5", ".keras", ".pb")
"""Names that :func:`load_embedder` takes for a model file (the others are refused by
:class:`FileEmbedder` with the reason)."""


class FileEmbedder(Embedder):
    """A face-embedding model in a ``.tflite`` file (e.g. an ArcFace or FaceNet export).

    Faces (float in [-1, 1]) are resized to the model's input size; a model that expects
    [0, 255] or [0, 1] pixels declares it in a JSON card beside it
    (``{"input_range": [0, 255]}``), the default being [-1, 1]. Only
    :data:`EMBEDDING_FORMATS` are accepted: export a Keras embedding model to
    ``.tflite`` (``tf.lite.TFLiteConverter``) on a machine where you trust it. Faces are
    compared by cosine similarity.

    Raises:
        IdentityError: the file is of another format, is not an embedding model (one
            NHWC image in, one vector per image out), or its card is not valid.
    """

    similarity_name = "cosine similarity"

    def __init__(self, path: str):
        import json
        import math

        from tfface.lite import LiteRunner

        if not str(path).lower().endswith(EMBEDDING_FORMATS):
            raise IdentityError(
                f"{path}: face-embedding models are accepted as .tflite files only; Keras "
                ".h5/.keras files and SavedModels can carry code that loading would run "
                "(Lambda layers, custom objects), so tfface never loads them. Export the "
                "model with tf.lite.TFLiteConverter where you trust it and pass the .tflite")
        card_path = os.path.splitext(path)[0] + ".json"
        lo, hi = -1.0, 1.0
        if os.path.lexists(card_path):
            try:
                with open_regular(card_path) as f:
                    card = json.loads(f.read(100_000).decode("utf-8"))
                lo, hi = card.get("input_range", [-1.0, 1.0]) if isinstance(card, dict) \
                    else (0, 0)
                lo, hi = float(lo), float(hi)
                if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                    raise ValueError
            except (OSError, ValueError, TypeError, RecursionError):
                raise IdentityError(f"{card_path}: expected a JSON object such as "
                                    '{"input_range": [0, 255]} (two finite numbers, low < '
                                    "high)") from None
        self._runner = LiteRunner(path)
        ins = [tuple(int(v) for v in d["shape"]) for d in self._runner.inputs]
        outs = [tuple(int(v) for v in d["shape"]) for d in self._runner.outputs]
        if len(ins) != 1 or len(ins[0]) != 4 or ins[0][-1] != 3 or not outs \
                or len(outs[0]) != 2:
            raise IdentityError(
                f"{path} is not a face-embedding model: it takes {ins} and returns {outs}, "
                "but an embedding model takes one N x H x W x 3 image and returns one N x D "
                "vector per face")
        self.name = os.path.basename(path)
        self._size, self._range = ins[0][1:3], (lo, hi)

    def embed(self, faces: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        lo, hi = self._range
        x = tf.image.resize(np.asarray(faces, np.float32), self._size).numpy()
        return self._runner((x + 1.0) / 2.0 * (hi - lo) + lo)


EMBEDDERS: Registry[Callable[[], Embedder]] = Registry(
    "face embedder", {"dlib": DlibEmbedder}, listing="choose from", error=IdentityError)
"""Embedders ``--identity`` can name (each loads only files its package installed)."""


def load_embedder(name_or_file: str) -> Embedder:
    """The face embedder ``name_or_file``: one of :data:`EMBEDDERS` by name, or a model
    file (a path, or a name ending in one of :data:`MODEL_FILE_SUFFIXES`) read by
    :class:`FileEmbedder`. The one loader of ``--identity`` and ``--embedding``.

    Raises:
        IdentityError: an unknown name, missing packages, or a file that is no usable
            ``.tflite`` embedding model.
    """
    spec = str(name_or_file)
    if spec not in EMBEDDERS and (os.sep in spec or os.path.exists(spec)
                                  or spec.lower().endswith(MODEL_FILE_SUFFIXES)):
        return FileEmbedder(spec)
    return EMBEDDERS.lookup(spec)()


# -- who is who ----------------------------------------------------------------------

def _key(path: str) -> str:
    """A photo's path relative to its folder, as the identities file writes it."""
    p = str(path).replace(os.sep, "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def read_identities(path: str | os.PathLike) -> dict[str, str]:
    """``{file: person}`` from a CSV with a header ``file,<person column>``.

    ``file`` is the photo's path relative to the data folder (``/`` separators); the
    second column names its person (any text, e.g. a CelebA identity number). Extra
    columns are ignored.

    Raises:
        IdentityError: a missing, unreadable or malformed file (one line that says
            where and what was expected).
    """
    shape = "a CSV with the header 'file,<person>' and one line per photo"
    try:
        with open_regular(path) as f:
            raw = f.read(MAX_CSV_BYTES + 1)
    except OSError as e:
        raise IdentityError(f"{path}: cannot read the identities file "
                            f"({e.strerror or e}); expected {shape}") from None
    if len(raw) > MAX_CSV_BYTES:
        raise IdentityError(f"{path}: larger than {MAX_CSV_BYTES >> 20} MB; expected {shape}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IdentityError(f"{path}: not UTF-8 text; expected {shape}") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise IdentityError(f"{path}: not a valid CSV ({e}); expected {shape}") from None
    if not rows:
        raise IdentityError(f"{path}: empty; expected {shape}")
    head = rows[0]
    if len(head) < 2 or head[0].strip().lower() != "file" or not head[1].strip():
        raise IdentityError(f"{path}: line 1: expected the header 'file,<person>', got "
                            f"{','.join(head)[:80]!r}")
    people: dict[str, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue  # blank line
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise IdentityError(f"{path}: line {n}: expected 'file,<person>', got "
                                f"{','.join(row)[:80]!r}")
        name, person = _key(row[0].strip()), row[1].strip()
        if people.get(name, person) != person:
            raise IdentityError(f"{path}: line {n}: {name} is given two people "
                                f"({people[name]} and {person})")
        people[name] = person
    if not people:
        raise IdentityError(f"{path}: no photo listed; expected {shape}")
    return people


# -- the protocol --------------------------------------------------------------------

def threshold_at_fpr(impostor: np.ndarray, target_fpr: float = TARGET_FPR) -> float:
    """The lowest threshold that accepts (``score >= t``) at most ``target_fpr`` of
    the ``impostor`` scores. Ties are never split: when the allowed fraction falls in
    a run of equal scores, the threshold rises above the whole run."""
    s = np.sort(np.asarray(impostor, np.float64).ravel())[::-1]
    if not len(s):
        raise ValueError("no impostor pairs to choose a threshold on")
    k = int(np.floor(target_fpr * len(s) + 1e-9))  # impostor pairs allowed through
    if k >= len(s):
        return -np.inf
    return float(np.nextafter(s[k], np.inf))


def best_accuracy_threshold(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The threshold (``score >= t`` accepts) that maximizes balanced accuracy
    ``(TPR + TNR) / 2`` on these pairs: halfway between the lowest best-scoring
    observed score and the score below it."""
    g, i = np.sort(np.ravel(genuine)), np.sort(np.ravel(impostor))
    cand = np.unique(np.concatenate([g, i, [np.inf]]))
    tpr = 1.0 - np.searchsorted(g, cand, side="left") / max(len(g), 1)
    tnr = np.searchsorted(i, cand, side="left") / max(len(i), 1)
    k = int(np.argmax(tpr + tnr))
    # Halfway to the next lower score: the same decisions on these pairs, and a margin
    # for other variants' scores (cand[k] itself is an observed score, at the edge).
    return float(cand[k] if k == 0 or not np.isfinite(cand[k]) else (cand[k] + cand[k - 1]) / 2)


def pair_masks(probe_people: Sequence, gallery_people: Sequence,
               probe_files: Sequence[str] | None = None,
               gallery_files: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``[P, G]`` masks of genuine pairs (same person, different photo) and
    impostor pairs (different people). A probe is never paired with its own photo."""
    pp, gp = np.asarray(probe_people, object), np.asarray(gallery_people, object)
    same = pp[:, None] == gp[None, :]
    own = np.zeros_like(same)
    if probe_files is not None and gallery_files is not None:
        own = np.asarray(probe_files, object)[:, None] == np.asarray(gallery_files, object)[None, :]
    return same & ~own, ~same


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value of two paired classifiers that disagree on
    ``only_a + only_b`` items (``only_a`` right only for A, ``only_b`` only for B): the
    chance of a split at least this uneven if each disagreement were a fair coin."""
    n, k = int(only_a) + int(only_b), min(int(only_a), int(only_b))
    if n == 0:
        return 1.0
    # integers throughout: 2 ** n overflows a float beyond about 1,000 disagreements
    return float(min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n))


def verification(variants: Mapping[str, np.ndarray], probe_people: Sequence,
                 gallery: np.ndarray, gallery_people: Sequence, *,
                 probe_files: Sequence[str] | None = None,
                 gallery_files: Sequence[str] | None = None,
                 similarity: Callable[[np.ndarray, np.ndarray], np.ndarray] = cosine_similarity,
                 target_fpr: float = TARGET_FPR, reference: str = "clean",
                 groups: Sequence[str] | None = None,
                 baseline: str | None = None) -> dict[str, Any]:
    """Verification figures of each variant's probe embeddings against a gallery.

    ``variants`` maps a name to ``[P, D]`` probe embeddings (the same P photos in every
    variant, of ``probe_people``); ``gallery`` is ``[G, D]`` of ``gallery_people``.
    Thresholds are fixed on the ``reference`` variant (clean): ``threshold`` at
    ``target_fpr`` of its impostor pairs, ``accuracy_threshold`` where its balanced
    accuracy peaks. Each variant gets ``tpr``/``fpr`` at the first, ``accuracy`` at
    the second, pair counts and mean genuine/impostor similarities, and ``tpr_own``: its
    TPR at its own ``target_fpr`` point (the threshold fixed on its own impostor pairs,
    its ROC curve read at that FPR), which a variant that raises every score alike, and so
    passes more impostors at the shared threshold, does not inflate. ``groups`` (one
    label per probe, e.g. its occlusion) adds ``by_group``: the same figures over each
    group's probes, at the same thresholds. ``baseline`` (a variant's name) adds
    ``paired``: for every other variant, the genuine pairs it accepts and the baseline
    rejects and the reverse (each at its own ``target_fpr`` threshold, as ``tpr_own``) and
    the exact McNemar p-value of that split (:func:`mcnemar_p`): whether a TPR difference
    is more than a few pairs that flip.

    Raises:
        ValueError: no ``reference`` (or ``baseline``) variant, or no genuine or no
            impostor pair.
    """
    if reference not in variants:
        raise ValueError(f"the '{reference}' variant is needed to fix the thresholds")
    if baseline is not None and baseline not in variants:
        raise ValueError(f"no '{baseline}' variant to pair with")
    genuine, impostor = pair_masks(probe_people, gallery_people, probe_files, gallery_files)
    if not genuine.any():
        raise ValueError("no genuine pair: no probe has another photo of its person in "
                         "the gallery")
    if not impostor.any():
        raise ValueError("no impostor pair: every photo is of the same person")
    scores = {k: similarity(v, gallery) for k, v in variants.items()}
    ref = scores[reference]
    threshold = threshold_at_fpr(ref[impostor], target_fpr)
    acc_threshold = best_accuracy_threshold(ref[genuine], ref[impostor])
    out: dict[str, Any] = {
        "threshold": threshold, "accuracy_threshold": acc_threshold, "target_fpr": target_fpr,
        "probes": len(genuine), "probes_with_genuine_pairs": int(genuine.any(1).sum()),
        "gallery": len(gallery_people), "genuine_pairs": int(genuine.sum()),
        "impostor_pairs": int(impostor.sum()), "variants": {}}

    own = {k: threshold_at_fpr(s[impostor], target_fpr) for k, s in scores.items()}

    def figures(s, gen, imp, t_own):
        g, i = s[gen], s[imp]
        return {"tpr": float(np.mean(g >= threshold)) if len(g) else None,
                "tpr_own": float(np.mean(g >= t_own)) if len(g) else None,
                "fpr": float(np.mean(i >= threshold)),
                "accuracy": float((np.mean(g >= acc_threshold) + np.mean(i < acc_threshold)) / 2)
                if len(g) else None,
                "genuine_similarity": float(np.mean(g)) if len(g) else None,
                "impostor_similarity": float(np.mean(i)),
                "genuine_pairs": int(len(g)), "impostor_pairs": int(len(i))}

    out["variants"] = {name: figures(s, genuine, impostor, own[name])
                       for name, s in scores.items()}
    if groups is not None:
        labels = np.asarray(groups, object)
        out["by_group"] = {}
        for label in sorted(set(labels.tolist())):
            rows = (labels == label)[:, None]
            out["by_group"][str(label)] = {
                name: figures(s, genuine & rows, impostor & rows, own[name])
                for name, s in scores.items()}
    if baseline is not None:
        base = scores[baseline][genuine] >= own[baseline]
        out["paired"] = {}
        for name, s in scores.items():
            if name not in (baseline, reference):
                acc = s[genuine] >= own[name]
                a, b = int(np.sum(acc & ~base)), int(np.sum(base & ~acc))
                out["paired"][name] = {"baseline": baseline, "only_variant": a,
                                       "only_baseline": b, "p_value": mcnemar_p(a, b)}
    return out


# -- on evaluate's eval faces --------------------------------------------------------

def face_variants(batches: Sequence[Mapping[str, np.ndarray]],
                  restorers: Mapping[str, Callable]) -> dict[str, np.ndarray]:
    """Every version of the eval faces that is judged: ``clean``, ``damaged``, the
    classical baseline (``opencv_ns`` given the true mask; ``bicubic`` for SR) and each
    of ``restorers`` (``{name: fn(batch) -> faces}``), as ``[N, H, W, 3]`` in [-1, 1]."""
    sr = "lr" in batches[0]
    fns = {"clean": lambda b: b["clean"],
           "damaged": nearest_input if sr else (lambda b: b["occluded"]),
           **({"bicubic": bicubic} if sr else {"opencv_ns": opencv_inpaint("ns")}),
           **restorers}
    return {k: np.concatenate([np.asarray(fn(b)) for b in batches]) for k, fn in fns.items()}


def folder_faces(data_cfg) -> tuple[list[str], np.ndarray]:
    """Every usable photo of a folder source as the eval crop (uint8 ``[N, S, S, 3]``,
    as the eval faces are cut) with its path relative to the folder."""
    from tfface.data.sources import FolderSource

    d = copy.deepcopy(data_cfg)
    d.eval_count = 1 << 30
    source = FolderSource(d, held_out=True)
    files, faces = [], []
    for el in source.dataset("eval"):
        files.append(_key(source.eval_files[int(el["index"])]))
        faces.append(el["image"].numpy())
    return files, np.stack(faces)


def _group_labels(batches: Sequence[Mapping[str, np.ndarray]]) -> list[str] | None:
    """Each eval face's occlusion generator (inpainting) or degradation (SR), if known."""
    if all("occlusion" in b for b in batches):
        from tfface.data.occlusion import OCCLUSION_IDS

        names = {v: k for k, v in OCCLUSION_IDS.items()}
        return [names.get(int(o), str(int(o))) for b in batches for o in b["occlusion"]]
    if all("degradation" in b for b in batches):
        return [str(d) for b in batches for d in b["degradation"]]
    return None


@dataclass
class IdentityEval:
    """The face-verification evaluation of ``pipelines.evaluate --identity``: an
    embedder and the folder's ``{file: person}`` table, both loaded before scoring."""

    embedder: Embedder
    people: dict[str, str]
    target_fpr: float = TARGET_FPR
    log: Callable[[str], None] = field(default=lambda msg: print(msg, flush=True))

    @classmethod
    def load(cls, embedder: str, cfg, identities: str | os.PathLike | None = None
             ) -> "IdentityEval":
        """The evaluation of ``cfg``'s folder of photos with the embedder called
        ``embedder`` and the ``identities`` table (default: :data:`IDENTITIES_FILE`
        in the folder).

        Raises:
            IdentityError: (one line) not a folder source, or the table or the
                embedder cannot be loaded.
        """
        if cfg.data.source != "folder" or not cfg.data.data_dir:
            raise IdentityError("face verification needs a folder of photos (--data-dir) "
                                f"with its {IDENTITIES_FILE}")
        people = read_identities(identities or os.path.join(
            os.path.expanduser(str(cfg.data.data_dir)), IDENTITIES_FILE))
        return cls(load_embedder(embedder), people)

    def run(self, cfg, batches: Sequence[Mapping[str, np.ndarray]],
            restorers: Mapping[str, Callable], source=None) -> dict[str, Any]:
        """Figures of :func:`verification` for :func:`face_variants` of ``batches``
        (the eval faces of ``cfg``'s folder, read through ``source`` or the folder's
        own eval split), against every photo of the folder with a known person.

        Raises:
            IdentityError: too few listed photos to pair.
        """
        if source is None:
            from tfface.data.sources import FolderSource

            source = FolderSource(cfg.data)  # the eval split is a fixed function of the folder
        index = np.concatenate([np.asarray(b["index"]) for b in batches])
        groups = _group_labels(batches)
        probe_files = [_key(source.eval_files[int(i)]) for i in index]
        known = [i for i, f in enumerate(probe_files) if f in self.people]
        if not known:
            raise IdentityError(f"none of the {len(probe_files)} eval faces is listed in the "
                                "identities file")
        variants = {k: v[known] for k, v in face_variants(batches, restorers).items()}
        probe_files = [probe_files[i] for i in known]
        groups = [groups[i] for i in known] if groups is not None else None
        gallery_files, gallery_faces = folder_faces(cfg.data)
        keep = [i for i, f in enumerate(gallery_files) if f in self.people]
        gallery_files = [gallery_files[i] for i in keep]
        self.log(f"Face verification ({self.embedder.name}): embedding {len(keep)} gallery "
                 f"photos and {len(known)} eval faces x {len(variants)} variants ...")
        gallery = self.embedder.embed(gallery_faces[keep])
        embedded = {k: self.embedder.embed(v) for k, v in variants.items()}
        try:
            out = verification(embedded, [self.people[f] for f in probe_files], gallery,
                               [self.people[f] for f in gallery_files],
                               probe_files=probe_files, gallery_files=gallery_files,
                               similarity=self.embedder.similarity, target_fpr=self.target_fpr,
                               groups=groups, baseline="damaged")
        except ValueError as e:
            raise IdentityError(str(e)) from None
        out.update(embedder=self.embedder.name, similarity=self.embedder.similarity_name,
                   unlisted_eval_faces=len(index) - len(known))
        return out


def markdown(report: Mapping[str, Any]) -> list[str]:
    """The report's section (lines of Markdown) for :meth:`IdentityEval.run` figures."""
    v = report["variants"]
    base = v.get("damaged", {}).get("tpr")
    lines = [f"{report['probes']} eval faces ({report['probes_with_genuine_pairs']} with another "
             f"photo of their person) against {report['gallery']} clean photos: "
             f"{report['genuine_pairs']} genuine and {report['impostor_pairs']} impostor pairs; "
             f"{report['embedder']} embedder ({report['similarity']}). TPR/FPR at the threshold "
             f"that accepts {report['target_fpr']:.0%} of clean impostor pairs "
             f"({report['threshold']:.4g}); accuracy = (TPR + TNR) / 2 at the threshold that "
             f"maximizes it on clean pairs ({report['accuracy_threshold']:.4g}); TPR at own "
             f"{report['target_fpr']:.0%} FPR: at the threshold that accepts that share of the "
             "variant's own impostor pairs.", "",
             f"| faces | TPR @ {report['target_fpr']:.0%} FPR | FPR | TPR at own "
             f"{report['target_fpr']:.0%} FPR | accuracy | TPR - damaged |",
             "|---|---|---|---|---|---|"]
    for name, r in v.items():
        d = "-" if base is None or name == "damaged" else f"{r['tpr'] - base:+.3f}"
        lines.append(f"| {name} | {r['tpr']:.3f} | {r['fpr']:.3f} | {r['tpr_own']:.3f} | "
                     f"{r['accuracy']:.3f} | {d} |")
    groups = report.get("by_group") or {}
    if len(groups) > 1:
        names = list(v)
        lines += ["", f"TPR @ {report['target_fpr']:.0%} FPR per occlusion / degradation "
                  "(genuine pairs in brackets):", "",
                  "| group | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for label, rows in groups.items():
            pairs = next(iter(rows.values()))["genuine_pairs"]
            vals = ["-" if rows[n]["tpr"] is None else f"{rows[n]['tpr']:.3f}" for n in names]
            lines.append(f"| {label} ({pairs}) | " + " | ".join(vals) + " |")
    paired = report.get("paired") or {}
    if paired:
        base = next(iter(paired.values()))["baseline"]
        lines += ["", f"Pair by pair against the {base} faces, each at its own "
                  f"{report['target_fpr']:.0%} FPR threshold: the genuine pairs only one of the "
                  "two accepts, and the exact McNemar p-value of that split (below about 0.05, "
                  "more than pairs that flip at the threshold):", "",
                  f"| faces | accepted, {base} rejected | rejected, {base} accepted | p |",
                  "|---|---|---|---|"]
        lines += [f"| {n} | {p['only_variant']} | {p['only_baseline']} | {p['p_value']:.2g} |"
                  for n, p in paired.items()]
    return lines
