"""Model cards: what a ``.tflite`` file is and how to feed it, and whether that is true.

A card (format :data:`CARD_FORMAT`) is JSON written by ``tflite.convert`` twice: as
``model_<mode>.json`` beside the file, carrying the file's SHA-256
(:data:`CARD_HASH_KEY`), and embedded in the file as its ``tfface_model_card``
metadata, so a file separated from its JSON still describes itself. It lists each
tensor by what it is (:data:`TENSOR_KINDS`: image, mask, low-resolution image) with
its range and the formula from pixels, the task, the training data and measured
figures.

This module owns the format and the reading side: :func:`load_card` (the card that
belongs to a file), :func:`read_card`/:func:`embed_card`/:func:`strip_card` (the
embedded copy), :func:`tensor_entry` (a tensor's description) and
:func:`card_problems` (what in a card is untrue of its file). Restoring reads cards
with it; the converter writes them; the validator and the asset tests check them.
A card may come from anyone: nothing here follows a path written in it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Any

import numpy as np

import tfface  # noqa: F401  (selects tf_keras before TensorFlow loads)
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils as fbu

from tfface.fileio import open_regular
from tfface.lite import LiteRunner

log = logging.getLogger(__name__)

CARD_KEY = "tfface_model_card"
"""Name of the flatbuffer metadata entry that holds the embedded card."""

CARD_FORMAT = "tfface-model-card/1"
"""The ``format`` field of every card the converter writes."""

# How app code maps pixels to the model's [-1, 1] tensors and back. In TFLite metadata
# terms the input is normalized with (pixel - mean) / std, and the output is mapped
# back to pixels by (value - mean) / std with mean -1 and std 1/127.5.
INPUT_NORMALIZATION = {"mean": 127.5, "std": 127.5,
                       "formula": "x = (pixel - 127.5) / 127.5  (pixel in 0..255, RGB)"}
OUTPUT_DENORMALIZATION = {"mean": -1.0, "std": 1.0 / 127.5,
                          "formula": "pixel = clip(round((y + 1) * 127.5), 0, 255)"}
MASK_NORMALIZATION = {
    "mean": 0.0, "std": 1.0, "values": [0.0, 1.0],
    "formula": "m = 1.0 where the pixel is missing or covered (the hole to restore), else 0.0; "
               "from an 8-bit mask image with white = hole: m = 1.0 if value > 127 else 0.0",
}

# What each model tensor is, by its signature key (the dataset key of the input).
TENSOR_KINDS: dict[str, dict[str, Any]] = {
    "occluded": {"kind": "image", "description": "the damaged face, RGB",
                 "layout": "NHWC, RGB", "value_range": [-1.0, 1.0],
                 "normalization": INPUT_NORMALIZATION},
    "mask": {"kind": "mask", "description": "the hole mask, one channel, 0/1 "
                                            "(1 = hole: the pixels the model restores)",
             "layout": "NHWC, 1 channel", "value_range": [0.0, 1.0],
             "normalization": MASK_NORMALIZATION},
    "lr": {"kind": "low-resolution image",
           "description": "the low-resolution face, RGB (the output is `scale` times larger)",
           "layout": "NHWC, RGB", "value_range": [-1.0, 1.0],
           "normalization": INPUT_NORMALIZATION},
}
OUTPUT_KIND = {"kind": "image", "description": "the restored face, RGB", "layout": "NHWC, RGB",
               "value_range": [-1.0, 1.0], "denormalization": OUTPUT_DENORMALIZATION}


CARD_HASH_KEY = "file_sha256"
"""Key of the JSON card beside a file that holds the SHA-256 of the file it describes."""
MAX_CARD_BYTES = 2_000_000


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _side_card(side: str) -> dict[str, Any] | None:
    try:
        with open_regular(side) as f:
            raw = f.read(MAX_CARD_BYTES + 1)
        card = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_CARD_BYTES else None
    except (OSError, ValueError, RecursionError):  # damaged or not a file: not a card
        return None
    return card if isinstance(card, dict) else None


def load_card(path: str) -> dict[str, Any] | None:
    """The file's model card: the JSON beside it when it belongs to the file, else the
    copy embedded in the file.

    The JSON card beside a file is used only when its ``file_sha256`` matches the
    file (or, for cards written before the hash existed, when it equals the embedded
    card): a conversion killed between renaming the card and the model, or a card
    copied next to another file, never describes a file it does not belong to.
    """
    try:
        embedded = read_card(path)
    except Exception:  # noqa: BLE001 - a file without parsable metadata has no card
        embedded = None
    if embedded is not None and not isinstance(embedded, dict):
        embedded = None
    side = os.path.splitext(path)[0] + ".json"
    card = _side_card(side) if os.path.lexists(side) else None
    if card is None:
        return embedded
    digest = card.get(CARD_HASH_KEY)
    if digest is not None:
        try:
            belongs = digest == file_sha256(path)
        except OSError:
            belongs = False
    else:
        belongs = embedded is None or card == embedded
    if belongs:
        return card
    log.warning("%s does not belong to %s (it does not match the file: a stale or copied "
                "card); using the card embedded in the file", side, path)
    return embedded


# -- the copy embedded in the file ---------------------------------------------------

def read_flatbuffer(model: bytes | str | os.PathLike) -> Any:
    """The flatbuffer object of a ``.tflite`` file (path) or its bytes."""
    if isinstance(model, (bytes, bytearray)):
        return fbu.read_model_from_bytearray(bytearray(model))
    return fbu.read_model(os.fspath(model))


def metadata_entries(m: Any) -> dict[str, bytes]:
    """``{name: bytes}`` of the metadata entries of a flatbuffer model object."""
    out = {}
    for md in m.metadata or []:
        name = md.name.decode() if isinstance(md.name, bytes) else md.name
        data = m.buffers[md.buffer].data
        out[name] = bytes(np.asarray(data, np.uint8)) if data is not None else b""
    return out


def embed_card(model: bytes, card: dict[str, Any]) -> bytes:
    """Return ``model`` with ``card`` (JSON) stored as its ``tfface_model_card`` metadata."""
    m = read_flatbuffer(model)
    m.metadata = [md for md in (m.metadata or []) if md.name not in (CARD_KEY, CARD_KEY.encode())]
    buf = schema_fb.BufferT()
    buf.data = np.frombuffer(json.dumps(card, sort_keys=True).encode(), np.uint8)
    m.buffers.append(buf)
    md = schema_fb.MetadataT()
    md.name = CARD_KEY
    md.buffer = len(m.buffers) - 1
    m.metadata.append(md)
    return bytes(fbu.convert_object_to_bytearray(m))


def strip_card(model: bytes) -> bytes:
    """``model`` without its embedded card (the model itself, as the converter wrote it).

    Two files whose stripped bytes are equal hold the same model, whatever their cards
    say. The card's buffer is removed too, so nothing of the old card remains.
    """
    m = read_flatbuffer(model)
    keep, drop = [], set()
    for md in m.metadata or []:
        (drop.add(md.buffer) if md.name in (CARD_KEY, CARD_KEY.encode()) else keep.append(md))
    if not drop:
        return bytes(model)
    # Only the card's buffer goes; it is the last one embed_card appended, so no other
    # index moves. Anything else is refused rather than renumbered.
    if drop != {len(m.buffers) - 1}:
        raise ValueError("the embedded model card is not the file's last buffer; "
                         "the file was not written by tfface")
    m.buffers.pop()
    m.metadata = keep
    return bytes(fbu.convert_object_to_bytearray(m))


def read_card(model: bytes | str | os.PathLike) -> dict[str, Any] | None:
    """The model card embedded in a ``.tflite`` file (``None`` when it has none)."""
    raw = metadata_entries(read_flatbuffer(model)).get(CARD_KEY)
    if not raw:
        return None
    try:
        return json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):  # a damaged file: no usable card
        return None


def new_card(name: str, file: str, task: str, architecture: str,
             **fields: Any) -> dict[str, Any]:
    """A model card: the fields every card starts with (``format`` =
    :data:`CARD_FORMAT`, ``name``, ``file``, ``task``, ``architecture``), then ``fields``
    in the order given. The converter's cards and the occluder segmenter's are made here."""
    return {"format": CARD_FORMAT, "name": name, "file": file, "task": task,
            "architecture": architecture, **fields}


# -- describing tensors, checking a card against its file ------------------------------

def tensor_entry(detail: dict, role: str, task: str = "inpaint",
                 key: str | None = None) -> dict[str, Any]:
    """The card's description of one input/output tensor: what it is (image, mask,
    low-resolution image), its range and the formula from pixels (or to pixels)."""
    scale, zp = detail["quantization"]
    entry: dict[str, Any] = {
        "name": detail["name"],
        "key": key or LiteRunner.tensor_key(detail),
        "shape": [int(s) for s in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
    }
    if role == "output":
        kind = dict(OUTPUT_KIND)
        if task == "sr":
            kind["description"] = "the super-resolved face, RGB"
    else:
        kind = TENSOR_KINDS.get(entry["key"])
        if kind is None:  # a tensor this card format does not know: say only what is sure
            kind = {"kind": "tensor", "description": f"model input '{entry['key']}'",
                    "layout": "NHWC"}
    entry.update(kind)
    entry["quantization"] = (
        {"scale": float(scale), "zero_point": int(zp),
         "formula": "real = (q - zero_point) * scale"}
        if np.issubdtype(detail["dtype"], np.integer) else None
    )
    return entry


def output_entries(runner: LiteRunner, task: str) -> list[dict[str, Any]]:
    """Card entries of the outputs, keyed by their signature names (e.g. ``restored``)."""
    sig = runner.interpreter.get_signature_list().get("serving_default", {})
    names = sig.get("outputs", [])
    keys = names if len(names) == len(runner.outputs) == 1 else [None] * len(runner.outputs)
    return [tensor_entry(d, "output", task, k) for d, k in zip(runner.outputs, keys)]


_ABS_PATH = re.compile(r"(?:^|[\s'\"(=:,])(?:/[\w.-]+)+|(?:^|[\s'\"(=:,])~/|[A-Za-z]:\\")


def absolute_paths(card: Any) -> list[str]:
    """Every string in ``card`` (recursively) that holds an absolute machine path."""
    if isinstance(card, dict):
        return [p for v in card.values() for p in absolute_paths(v)]
    if isinstance(card, list):
        return [p for v in card for p in absolute_paths(v)]
    return [card] if isinstance(card, str) and _ABS_PATH.search(card) else []


def card_problems(path: str, card: dict[str, Any] | None = None) -> list[str]:
    """What is untrue or missing in the model card of a ``.tflite`` file (empty: none).

    Checks the JSON beside the file (or ``card``) against the file itself: the same
    card embedded in the file, its name and size, each input described by what it is
    (image / mask / low-resolution image, with its own channels, range and formula),
    and no absolute machine path anywhere.
    """
    problems: list[str] = []
    if card is None:
        side = os.path.splitext(path)[0] + ".json"
        if not os.path.exists(side):
            return [f"no model card {os.path.basename(side)} beside the file"]
        with open(side, encoding="utf-8") as f:
            card = json.load(f)
    # The JSON card also carries the file's SHA-256, which the embedded copy cannot hold.
    embedded = read_card(path) or {}
    if ({k: v for k, v in embedded.items() if k != CARD_HASH_KEY}
            != {k: v for k, v in card.items() if k != CARD_HASH_KEY}):
        problems.append("the card embedded in the file differs from the JSON card")
    if CARD_HASH_KEY in card and card[CARD_HASH_KEY] != file_sha256(path):
        problems.append(f"card {CARD_HASH_KEY} does not match the file")
    if card.get("file") != os.path.basename(path):
        problems.append(f"card names file {card.get('file')!r}")
    if card.get("size_bytes") != os.path.getsize(path):
        problems.append(f"card size_bytes {card.get('size_bytes')} != {os.path.getsize(path)}")
    runner = LiteRunner(path)
    entries = card.get("inputs") or []
    if len(entries) != len(runner.inputs):
        problems.append(f"card lists {len(entries)} inputs, the file has {len(runner.inputs)}")
    for entry, detail in zip(entries, runner.inputs):
        key = LiteRunner.tensor_key(detail)
        want = TENSOR_KINDS.get(key)
        channels = int(detail["shape"][-1])
        if entry.get("name") != detail["name"] or entry.get("key") != key:
            problems.append(f"input {detail['name']}: the card entry is {entry.get('name')!r} "
                            f"with key {entry.get('key')!r}")
        if want is None:
            continue
        for field in ("kind", "layout", "value_range", "normalization"):
            if entry.get(field) != want[field]:
                problems.append(f"input '{key}' ({want['kind']}): card says {field} "
                                f"{entry.get(field)!r}")
        if (channels == 1) != (want["kind"] == "mask"):
            problems.append(f"input '{key}' has {channels} channels but is described as "
                            f"{entry.get('kind')!r}")
    for out in card.get("outputs") or []:
        if card.get("task") == "segment-occluder" or out.get("kind") == "mask":
            # a probability map, or the hole a blind file decided: not an image
            if out.get("value_range") != [0.0, 1.0] or out.get("shape", [0])[-1] != 1:
                problems.append(f"output {out.get('name')}: an occluder probability map or "
                                "hole is one channel in [0, 1]")
        elif out.get("value_range") != [-1.0, 1.0] or \
                out.get("denormalization") != OUTPUT_DENORMALIZATION:
            problems.append(f"output {out.get('name')}: range or denormalization is wrong")
    for p in absolute_paths(card):
        problems.append(f"absolute machine path in the card: {p!r}")
    return problems
