"""A differentiable stand-in for dlib's face descriptor: the identity loss of training.

dlib's ResNet descriptor (:class:`tfface.identity.verify.DlibEmbedder`) is what
``pipelines.evaluate --identity dlib`` judges restorations with, but it runs in C++ and
has no gradient, so a generator cannot be trained against it. This module distills it
into a small Keras network, the *student*, that maps a 128 px face crop (the crop the
training pipeline makes) to dlib's 128 numbers, and turns the student into a loss:

    identity(target, restored) = mean over the batch of ‖s(restored) − s(target)‖² / 0.6²

(0.6 is dlib's own same-person distance, so a loss of 1 is a restoration that dlib
would call someone else).

The student learns dlib on the faces it will judge: for training faces of a folder, the
clean crop, its damaged version from the training occlusion mixture and a model's
restoration of it (:func:`describe`), each with the descriptor dlib gives it. So it
sees what a filled-in mouth or pair of eyes does to the descriptor, not only clean
faces.

Files: ``student.weights.h5`` holds weights only (an HDF5 file read by Keras'
``load_weights`` into the architecture built here, which runs no code from the file);
``student.json`` beside it says which input size and widths built it, and is checked
before the weights are read.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np

from tfface.identity.dlib_resnet import DESCRIPTOR_DIM, SAME_PERSON_DISTANCE

STUDENT_WEIGHTS = "student.weights.h5"
STUDENT_CARD = "student.json"


class StudentError(ValueError):
    """A student that cannot be built, read or trained (one-line message)."""


@dataclass
class StudentSpec:
    """What builds a student network (stored in ``student.json``)."""

    image_size: int = 128
    """Side of the face crops it reads (the training crops; [-1, 1] RGB)."""
    work_size: int = 96
    """The crop is resized to this before the first convolution (cost ∝ its square)."""
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    """Channels of the four stride-2 stages (one residual block each)."""
    dim: int = DESCRIPTOR_DIM

    def check(self) -> None:
        ok = (isinstance(self.image_size, int) and 16 <= self.image_size <= 1024
              and isinstance(self.work_size, int) and 16 <= self.work_size <= 1024
              and isinstance(self.widths, list) and 1 <= len(self.widths) <= 6
              and all(isinstance(w, int) and 1 <= w <= 1024 for w in self.widths)
              and self.dim == DESCRIPTOR_DIM)
        if not ok:
            raise StudentError(f"not a usable student description: {asdict(self)}")


def build_student(spec: StudentSpec | None = None):
    """The student network: ``[B, S, S, 3]`` in [-1, 1] → ``[B, 128]`` descriptors."""
    from tfface import keras

    spec = spec or StudentSpec()
    spec.check()
    L = keras.layers
    bn = {"momentum": 0.9}  # moving statistics that settle within a few hundred steps
    inp = keras.Input((spec.image_size, spec.image_size, 3), name="face")
    x = inp
    if spec.work_size != spec.image_size:
        x = L.Resizing(spec.work_size, spec.work_size, interpolation="bilinear",
                       name="work_size")(x)
    x = L.Conv2D(spec.widths[0], 3, padding="same", use_bias=False, name="stem")(x)
    x = L.BatchNormalization(name="stem_bn", **bn)(x)
    x = L.ReLU()(x)
    for i, w in enumerate(spec.widths):
        y = L.Conv2D(w, 3, strides=2, padding="same", use_bias=False, name=f"s{i}_a")(x)
        y = L.BatchNormalization(name=f"s{i}_a_bn", **bn)(y)
        y = L.ReLU()(y)
        y = L.Conv2D(w, 3, padding="same", use_bias=False, name=f"s{i}_b")(y)
        y = L.BatchNormalization(name=f"s{i}_b_bn", gamma_initializer="zeros", **bn)(y)
        skip = L.Conv2D(w, 1, strides=2, use_bias=False, name=f"s{i}_skip")(x)
        x = L.ReLU()(L.Add()([y, skip]))
    # Flatten keeps where a feature is (the mouth is not the eyes); the last map is small.
    x = L.Conv2D(64, 1, use_bias=False, name="squeeze")(x)
    x = L.BatchNormalization(name="squeeze_bn", **bn)(x)
    x = L.ReLU()(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.2)(x)
    # A small initial head: the first outputs stay near the mean descriptor (its bias).
    out = L.Dense(spec.dim, name="descriptor",
                  kernel_initializer=keras.initializers.VarianceScaling(0.05))(x)
    return keras.Model(inp, out, name="identity_student")


# -- files ------------------------------------------------------------------------------

def save_student(model, spec: StudentSpec, out_dir: str, facts: dict | None = None) -> str:
    """Write ``student.weights.h5`` and ``student.json`` into ``out_dir``; returns the dir."""
    os.makedirs(out_dir, exist_ok=True)
    model.save_weights(os.path.join(out_dir, STUDENT_WEIGHTS))
    card = {"format": "tfface-identity-student-v1", "spec": asdict(spec), **(facts or {})}
    with open(os.path.join(out_dir, STUDENT_CARD), "w") as f:
        json.dump(card, f, indent=2)
    return out_dir


def load_student(path: str):
    """The student of a folder (or of its ``student.weights.h5``), frozen.

    Raises:
        StudentError: no such folder/file, a card that is not a student's, or weights
            that do not fit the architecture the card describes.
    """
    from tfface.fileio import open_regular

    folder = os.path.dirname(path) if path.endswith(".h5") else path
    card_path = os.path.join(folder, STUDENT_CARD)
    weights = os.path.join(folder, STUDENT_WEIGHTS)
    if not os.path.isfile(card_path) or not os.path.isfile(weights):
        raise StudentError(f"{folder} is not an identity student (it needs {STUDENT_CARD} and "
                           f"{STUDENT_WEIGHTS}; make one with python -m pipelines.identity_student)")
    try:
        with open_regular(card_path) as f:
            raw_bytes = f.read((1 << 20) + 1)
        if len(raw_bytes) > 1 << 20:
            raise ValueError("larger than 1 MB")
        card = json.loads(raw_bytes)
        if not isinstance(card, dict) or card.get("format") != "tfface-identity-student-v1":
            raise ValueError("not a tfface identity student card")
        raw = card.get("spec")
        if not isinstance(raw, dict) or set(raw) - set(StudentSpec.__dataclass_fields__):
            raise ValueError("its spec has unknown keys")
        spec = StudentSpec(**raw)
        spec.check()
    except (ValueError, TypeError, OSError, StudentError) as e:
        raise StudentError(f"{card_path} is not a usable identity student card ({e})") from None
    model = build_student(spec)
    try:
        model.load_weights(weights)
    except (ValueError, OSError, KeyError) as e:
        raise StudentError(f"{weights} does not hold the weights of the student {card_path} "
                           f"describes ({str(e).strip().splitlines()[0]})") from None
    model.trainable = False
    return model


def student_loss_fn(student) -> Callable:
    """``fn(target, pred) -> scalar``: the mean squared descriptor distance of the
    student, in units of dlib's same-person distance (see the module docstring)."""
    import tensorflow as tf

    scale = 1.0 / SAME_PERSON_DISTANCE ** 2

    def fn(target, pred):
        t = tf.stop_gradient(student(tf.cast(target, tf.float32), training=False))
        p = student(tf.cast(pred, tf.float32), training=False)
        return tf.reduce_mean(tf.reduce_sum(tf.square(p - t), axis=-1)) * scale

    return fn


# -- distillation data ------------------------------------------------------------------

def describe(batches: Iterator[dict], restore: Callable | None, embedder, limit: int,
             progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Faces and their dlib descriptors, for distillation.

    ``batches`` yields training batches (``clean``, ``occluded``, ``mask`` in [-1, 1]);
    ``restore(batch) -> [B, S, S, 3]`` in [-1, 1] is a model's restoration (None: no
    restored faces). Returns uint8 ``images`` ``[N, S, S, 3]``, float32 ``descriptors``
    ``[N, 128]``, the ``kind`` of each (0 clean, 1 damaged, 2 restored) and the
    ``face`` it came from (faces of one training photo share it).
    """
    from tfface.identity.verify import as_uint8_faces

    images, descs, kinds, faces = [], [], [], []
    n = 0
    for batch in batches:
        if n >= limit:
            break
        take = min(limit - n, int(batch["clean"].shape[0]))
        variants = [np.asarray(batch["clean"])[:take], np.asarray(batch["occluded"])[:take]]
        if restore is not None:
            variants.append(np.asarray(restore(batch))[:take])
        for kind, v in enumerate(variants):
            u8 = as_uint8_faces(v)
            images.append(u8)
            descs.append(embedder.embed(u8))
            kinds.append(np.full(take, kind, np.int8))
            faces.append(np.arange(n, n + take, dtype=np.int64))
        n += take
        if progress:
            progress(take)
    if not images:
        raise StudentError("no faces to describe")
    return {"images": np.concatenate(images), "descriptors": np.concatenate(descs),
            "kind": np.concatenate(kinds), "face": np.concatenate(faces)}


# -- training ---------------------------------------------------------------------------

def train_student(data: dict[str, np.ndarray], spec: StudentSpec, *, epochs: int,
                  batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                  max_minutes: float | None = None, val_fraction: float = 0.05,
                  log: Callable[[str], None] = print):
    """Fit a student to ``data`` (from :func:`describe`); returns ``(model, facts)``.

    A ``val_fraction`` of the training photos (all their variants) is held out and the
    loss on it reported as ``val_distance`` (mean descriptor distance, dlib units).
    Loss: mean squared error of the descriptor, plus the same on pairwise distances
    within the batch (what a verification threshold reads). Cosine learning rate;
    ``max_minutes`` stops early between epochs.
    """
    import time

    import tensorflow as tf

    from tfface import keras

    images, descs = data["images"], data["descriptors"].astype(np.float32)
    faces = data["face"]
    rng = np.random.default_rng(seed)
    ids = np.unique(faces)
    val_ids = rng.choice(ids, max(1, int(len(ids) * val_fraction)), replace=False)
    is_val = np.isin(faces, val_ids)
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(tr) < batch_size:
        raise StudentError(f"{len(tr)} training faces are fewer than one batch ({batch_size})")

    model = build_student(spec)
    # Start at the mean descriptor: the network then only learns how faces differ.
    head = model.get_layer("descriptor")
    head.bias.assign(descs[tr].mean(0))
    steps_per_epoch = len(tr) // batch_size
    total = max(1, steps_per_epoch * epochs)
    sched = keras.optimizers.schedules.CosineDecay(lr, total, alpha=0.02)
    opt = keras.optimizers.Adam(sched)

    def to_unit(x):
        return tf.cast(x, tf.float32) / 127.5 - 1.0

    @tf.function
    def step(x, y):
        x = to_unit(x)
        # Small shifts and brightness changes: the generator's outputs are not pixel-exact.
        x = tf.image.random_brightness(x, 0.08)
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            point = tf.reduce_mean(tf.reduce_sum(tf.square(p - y), -1))
            dp = tf.sqrt(tf.reduce_sum(tf.square(p[:, None] - p[None]), -1) + 1e-6)
            dy = tf.sqrt(tf.reduce_sum(tf.square(y[:, None] - y[None]), -1) + 1e-6)
            pair = tf.reduce_mean(tf.square(dp - dy))
            loss = point + pair
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return point, pair

    def val_distance():
        if not len(va):
            return float("nan")
        out = []
        for i in range(0, len(va), 256):
            sel = va[i:i + 256]
            p = model(to_unit(images[sel]), training=False).numpy()
            out.append(np.linalg.norm(p - descs[sel], axis=1))
        return float(np.concatenate(out).mean())

    start = time.time()
    history = []
    for epoch in range(epochs):
        order = rng.permutation(tr)
        pts, prs = [], []
        for b in range(steps_per_epoch):
            sel = np.sort(order[b * batch_size:(b + 1) * batch_size])
            point, pair = step(images[sel], descs[sel])
            pts.append(float(point))
            prs.append(float(pair))
        vd = val_distance()
        minutes = (time.time() - start) / 60
        history.append({"epoch": epoch + 1, "point": float(np.mean(pts)),
                        "pair": float(np.mean(prs)), "val_distance": vd, "minutes": minutes})
        log(f"epoch {epoch + 1}/{epochs}: train squared error {np.mean(pts):.4f}, "
            f"pair {np.mean(prs):.4f}, held-out distance to dlib {vd:.4f} ({minutes:.1f} min)")
        if not math.isfinite(np.mean(pts)):
            raise StudentError("the student's loss became NaN; lower --lr")
        if max_minutes is not None and minutes >= max_minutes:
            log(f"stopping after {epoch + 1} epochs: --max-minutes {max_minutes} reached")
            break
    facts = {"faces": int(len(ids)), "images": int(len(images)), "epochs_run": len(history),
             "val_distance": history[-1]["val_distance"], "history": history,
             "minutes": (time.time() - start) / 60}
    return model, facts
