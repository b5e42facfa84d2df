"""Clean-face sources: a folder of photos, a TFDS dataset, or built-in synthetic faces.

Every source yields dicts ``{"image": uint8 [S, S, 3] RGB, "landmarks": float32 [5, 2],
"index": int64}`` (see :mod:`tfface.data`). Images are center-cropped to a square, then
resized to ``data_cfg.image_size`` (area filter when shrinking, bicubic/bilinear when
enlarging); landmarks are ``(x, y)`` fractions of that square, in the order of
:data:`LANDMARK_NAMES`.

Splits:

* ``"train"`` is an infinite stream. Each epoch is a stateless permutation of the
  source's items derived from ``(data_cfg.seed, epoch)``, so a run is reproducible.
  ``index`` counts elements from ``start``: ``dataset("train", start=k)`` yields
  exactly the elements ``k, k+1, ...`` of ``dataset("train")``. The skip happens on
  item ids before any decoding, so resuming at ``step * batch`` is cheap (except for
  :class:`TfdsSource`, which has to skip records; see there).
* ``"eval"`` is finite and in a fixed order: ``min(data_cfg.eval_count, available)``
  elements with ``index = 0 .. n - 1``, disjoint from train.

Decoding and rendering run inside ``Dataset.map(num_parallel_calls=AUTOTUNE)`` with
deterministic order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)

import cv2
import numpy as np
import tensorflow as tf

from tfface.config import DataConfig
from tfface.fileio import NotRegularFileError, display_name, open_regular, regular_file_problem

logger = logging.getLogger(__name__)

__all__ = [
    "LANDMARK_NAMES",
    "CANONICAL_LANDMARKS",
    "IMAGE_EXTENSIONS",
    "SourceError",
    "FaceSource",
    "FolderSource",
    "TfdsSource",
    "SyntheticSource",
    "make_source",
    "render_synthetic_face",
]

SPLITS = ("train", "eval")

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
"""Landmark order. ``left``/``right`` are as seen in the image (CelebA's convention:
``left_eye`` is the eye with the smaller x), not the subject's left/right."""

# Mean landmark positions of CelebA's aligned images (img_align_celeba, 178x218 px,
# list_landmarks_align_celeba.txt), rounded to whole pixels:
#   left eye (69, 111), right eye (108, 111), nose tip (88, 135),
#   left mouth corner (72, 152), right mouth corner (106, 152).
# A centered 178x178 square crop removes 20 rows at the top, so y -> y - 20, and the
# fractions are these pixel positions divided by 178.
_CELEBA_MEAN_LANDMARKS_PX = np.array(
    [[69.0, 111.0], [108.0, 111.0], [88.0, 135.0], [72.0, 152.0], [106.0, 152.0]]
)
CANONICAL_LANDMARKS: np.ndarray = (
    (_CELEBA_MEAN_LANDMARKS_PX - np.array([0.0, 20.0])) / 178.0
).astype(np.float32)
"""float32 ``[5, 2]`` ``(x, y)`` fractions of the square crop of an aligned face:
``[[0.388, 0.511], [0.607, 0.511], [0.494, 0.646], [0.404, 0.742], [0.596, 0.742]]``."""
CANONICAL_LANDMARKS.setflags(write=False)


def framing_landmarks(framing: str) -> np.ndarray:
    """The five landmarks (``[5, 2]`` fractions) of a folder's faces by ``data.face_framing``."""
    if framing == "template":
        from tfface.faces.align import TEMPLATE

        return np.asarray(TEMPLATE, np.float32)
    if framing != "celeba":
        raise ValueError(f"data.face_framing must be 'celeba' or 'template', got '{framing}'")
    return CANONICAL_LANDMARKS


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
"""File extensions :class:`FolderSource` reads (case-insensitive)."""

# A fixed key for the folder train/eval split: the split must not move when the user
# changes data.seed, otherwise eval faces would leak into training across runs.
_FOLDER_SPLIT_KEY = b"tfface-folder-split-v1"
_EVAL_FRACTION_CAP = 0.10


class SourceError(ValueError):
    """A face source cannot be used; the message says why and how to fix it."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise SourceError(f"split must be one of {SPLITS}, got {split!r}")


def _resize_square_np(img: np.ndarray, size: int) -> np.ndarray:
    """Center-crop an HxWxC uint8 array to a square and resize it to ``size``."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = img[y0 : y0 + s, x0 : x0 + s]
    if s > size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    elif s < size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def _train_item_stream(n: int, seed: int, start: int, shuffle: bool) -> tf.data.Dataset:
    """Infinite ``(index, item)`` stream over items ``0..n-1``, one permutation per epoch.

    Epoch ``e`` is ``stateless_shuffle(range(n), seed=[seed, e])``; element ``i`` of the
    stream is item ``perm_{i // n}[i % n]`` and carries ``index = i``. Starting at
    ``start`` only slices the first permutation, so it costs nothing per skipped item.
    """
    if n < 1:
        raise SourceError("cannot build a training stream over zero items")
    if start < 0:
        raise SourceError(f"start must be >= 0, got {start}")
    first_epoch, offset = divmod(int(start), int(n))
    seed = int(seed)

    def epoch_items(epoch: tf.Tensor) -> tf.data.Dataset:
        items = tf.range(n, dtype=tf.int64)
        if shuffle:
            items = tf.random.experimental.stateless_shuffle(
                items, seed=tf.stack([tf.constant(seed, tf.int64), epoch])
            )
        skip = tf.where(epoch == first_epoch, tf.constant(offset, tf.int64), 0)
        return tf.data.Dataset.from_tensor_slices(items[skip:])

    items = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_items)
    return tf.data.Dataset.zip((tf.data.Dataset.counter(start=int(start)), items))


def _keep_indices(ds: tf.data.Dataset, keep) -> tf.data.Dataset:
    """``ds`` of ``(index, ...)`` pairs without the elements whose index ``keep`` rejects."""
    if keep is None:
        return ds
    return ds.filter(lambda index, _: keep(index))


class FaceSource:
    """Base class of the clean-face sources.

    Attributes:
        name: short name of the source (``folder``, ``tfds``, ``synthetic``).
        synthetic: True when the faces are not real photos (model cards must say so).
    """

    name: str = "base"
    synthetic: bool = False

    def __init__(self, data_cfg: DataConfig):
        self.cfg = data_cfg
        self.image_size = int(data_cfg.image_size)

    def num_examples(self, split: str) -> int | None:
        """Number of distinct elements of ``split`` (train: one epoch), None if unknown."""
        raise NotImplementedError

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        """The ``split`` stream; see the module docstring for the exact contract.

        ``keep``: optional ``fn(index) -> bool tensor``; elements whose index it
        rejects are dropped *before* they are read or decoded (a worker of a
        multi-worker run reads only its own shard, :mod:`tfface.train.distributed`).
        """
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs and model cards."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


# --------------------------------------------------------------------------- folder

_MAGIC_CHECKS: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("jpeg", lambda b: b[:3] == b"\xff\xd8\xff"),
    ("png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    ("webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("bmp", lambda b: b[:2] == b"BM"),
)

MAX_DECODE_PIXELS = 24_000_000
"""Largest image (pixels) decoded at full size, e.g. a 6000x4000 camera photo. Larger
JPEGs are decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself (no full-size
buffer is ever allocated); larger images of other formats are skipped."""

SKIP_REASONS = {
    "unreadable": "unreadable",
    "zero-byte": "zero-byte",
    "not-an-image": "not an image",
    "corrupt": "corrupt header",
    "truncated": "truncated",
    "too-small": "too small",
    "too-large": "too large",
    "not-a-file": "not a regular file (named pipe, socket, device)",
    "bad-name": "name not valid UTF-8",
}
"""Why :class:`FolderSource` skips a file (key → words of the summary warning)."""

CONVERT_REASONS = {
    "grayscale": "grayscale",
    "alpha": "RGBA/transparent (composited on white)",
    "16-bit": "16-bit (scaled to 8-bit)",
    "cmyk": "CMYK",
    "palette": "palette",
    "reduced": "huge JPEG (decoded at reduced size)",
}
"""How :class:`FolderSource` converts usable files that are not plain 8-bit RGB."""


def _sniff_bytes(head: bytes) -> str | None:
    for fmt, check in _MAGIC_CHECKS:
        if check(head):
            return fmt
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); C4 (DHT),
# C8 (reserved) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_header(f) -> tuple[int, int, int, int] | None:
    """(width, height, components, bits) from the first JPEG frame header, or None.

    Walks the marker segments from the start of the file with seeks, so large EXIF
    blocks cost nothing; reads at most a few hundred bytes.
    """
    f.seek(2)
    for _ in range(256):  # a real file reaches its frame header in a handful of segments
        if f.read(1) != b"\xff":  # every segment starts with a marker
            return None
        b = f.read(1)
        while b == b"\xff":  # fill bytes before the marker code
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # segments without a length
            continue
        seg = f.read(2)
        if len(seg) < 2:
            return None
        length = int.from_bytes(seg, "big")
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            sof = f.read(6)
            if len(sof) < 6:
                return None
            bits, h, w, comps = sof[0], int.from_bytes(sof[1:3], "big"), \
                int.from_bytes(sof[3:5], "big"), sof[5]
            return w, h, comps, bits
        if marker == 0xDA:  # start of scan before any frame header: broken
            return None
        f.seek(length - 2, os.SEEK_CUR)
        b = f.read(1)
        if b != b"\xff":
            return None
        f.seek(-1, os.SEEK_CUR)
    return None


def _png_header(head: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, color type, bit depth) from the IHDR chunk, or None."""
    if len(head) < 26 or head[12:16] != b"IHDR":
        return None
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return w, h, head[25], head[24]


def _pil_header(path: str) -> tuple[int, int, str] | None:
    """(width, height, PIL mode) of a WebP/BMP file read by Pillow (header only), or None."""
    import warnings

    try:
        from PIL import Image

        with warnings.catch_warnings():  # the size limit is ours (MAX_DECODE_PIXELS)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return int(im.size[0]), int(im.size[1]), str(im.mode)
    except Exception:  # Pillow raises many types on broken headers
        return None


def _fully_decodes(path: str) -> bool:
    """True when Pillow decodes the whole file (it rejects truncated data; OpenCV's JPEG
    decoder would fill the missing rows with gray instead)."""
    import warnings

    try:
        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
                im.load()
        return True
    except Exception:  # noqa: BLE001 - any failure means the data cannot be used
        return False


@dataclass
class ImageProbe:
    """What the folder scan learned about one file without decoding it."""

    skip: str | None = None
    """A key of :data:`SKIP_REASONS`, or None when the file is usable."""
    detail: str = ""
    notes: tuple[str, ...] = ()
    """Keys of :data:`CONVERT_REASONS` that apply to the file."""
    reduce: int = 1
    """JPEG decode scale denominator (1, 2, 4 or 8)."""
    size: tuple[int, int] | None = None


def probe_image(path: str, image_size: int, min_side: int, *,
                max_pixels: int = MAX_DECODE_PIXELS, reduce_jpeg: bool = True) -> ImageProbe:
    """Classify ``path`` from its header and tail bytes (no full decode).

    Catches zero-byte, unreadable (permissions, I/O errors), non-image, corrupt-header
    and truncated files, images smaller than ``min_side`` or larger than ``max_pixels``
    (JPEGs above it are decoded at reduced size when ``reduce_jpeg``, keeping the
    shorter side >= ``image_size`` where possible), and notes the conversions
    (grayscale, alpha, 16-bit, CMYK, palette, reduced-size JPEG decoding) the decoder
    will apply. A header that claims absurd dimensions is therefore never decoded.
    """
    try:
        with open_regular(path) as f:  # a named pipe would block a plain open() forever
            nbytes = os.fstat(f.fileno()).st_size
            if nbytes == 0:
                return ImageProbe("zero-byte")
            head = f.read(64)
            fmt = _sniff_bytes(head)
            if fmt is None:
                return ImageProbe("not-an-image", "no JPEG/PNG/WebP/BMP signature")
            notes: list[str] = []
            tail_ok = True
            if fmt == "jpeg":
                hdr = _jpeg_header(f)
                if hdr is None:
                    return ImageProbe("corrupt", "no JPEG frame header")
                w, h, comps, bits = hdr
                notes += {1: ["grayscale"], 4: ["cmyk"]}.get(comps, [])
                if bits > 8:
                    notes.append("16-bit")
                f.seek(max(0, nbytes - 64))
                tail_ok = b"\xff\xd9" in f.read(64)
            elif fmt == "png":
                hdr = _png_header(head)
                if hdr is None:
                    return ImageProbe("corrupt", "no PNG IHDR chunk")
                w, h, color, bits = hdr
                notes += {0: ["grayscale"], 3: ["palette"], 4: ["grayscale", "alpha"],
                          6: ["alpha"]}.get(color, [])
                if bits == 16:
                    notes.append("16-bit")
                f.seek(max(0, nbytes - 64))
                tail_ok = b"IEND" in f.read(64)
            else:
                if fmt == "webp":
                    tail_ok = int.from_bytes(head[4:8], "little") + 8 <= nbytes
                else:  # BMP: the header states the file size (some writers put 0)
                    declared = int.from_bytes(head[2:6], "little")
                    tail_ok = declared == 0 or declared <= nbytes
                hdr = _pil_header(path)
                if hdr is None:
                    return ImageProbe("corrupt", f"unreadable {fmt.upper()} header")
                w, h, mode = hdr
                notes += {"L": ["grayscale"], "LA": ["grayscale", "alpha"], "RGBA": ["alpha"],
                          "P": ["palette"], "CMYK": ["cmyk"], "I;16": ["grayscale", "16-bit"],
                          "I": ["grayscale", "16-bit"]}.get(mode, [])
    except NotRegularFileError as e:
        return ImageProbe("not-a-file", str(e))
    except OSError as e:
        return ImageProbe("unreadable", e.strerror or type(e).__name__)
    if w < 1 or h < 1:
        return ImageProbe("corrupt", f"{w}x{h} pixels")
    if min(w, h) < min_side:
        return ImageProbe("too-small", f"{w}x{h} px, shorter side < {min_side} px "
                          "(data.min_image_side)", size=(w, h))
    reduce = 1
    if w * h > max_pixels:
        if fmt != "jpeg" or not reduce_jpeg:
            return ImageProbe("too-large", f"{w}x{h} px ({w * h / 1e6:.0f} MP) > "
                              f"{max_pixels / 1e6:.0f} MP; downscale it", size=(w, h))
        # The JPEG decoder scales by 1/2, 1/4 or 1/8 while decoding: take the largest
        # scale-down that still leaves the shorter side >= image_size.
        fits = [r for r in (2, 4, 8) if (w // r) * (h // r) <= max_pixels]
        if not fits:
            return ImageProbe("too-large", f"{w}x{h} px JPEG, too large even at 1/8 scale",
                              size=(w, h))
        sharp = [r for r in fits if min(w, h) // r >= image_size]
        reduce = max(sharp) if sharp else min(fits)
        notes.append("reduced")
    if not tail_ok and not _fully_decodes(path):
        return ImageProbe("truncated", f"{nbytes} bytes; the image data ends early",
                          size=(w, h))
    return ImageProbe(None, notes=tuple(notes), reduce=reduce, size=(w, h))


def _walk_images(root: str, problems: list[tuple[str, str]],
                 odd: list[tuple[str, str, str]] | None = None) -> list[str]:
    """Files under ``root`` with an accepted extension, as sorted relative paths.

    Follows symbolic links to folders but enters every real folder once (a link loop
    is reported, not followed forever); folders that cannot be listed are reported in
    ``problems`` and skipped. Hidden files and folders are ignored. Entries with an
    image extension that are not regular files (named pipes, sockets, devices: opening
    a pipe would wait forever) or whose names are not valid UTF-8 are never opened; they
    go to ``odd`` as (printable relative path, skip reason, detail).
    """
    odd = [] if odd is None else odd
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
            key = (st.st_dev, st.st_ino)
            if key in seen:
                problems.append((os.path.relpath(d, root), "folder already scanned "
                                 "(symbolic link loop or duplicate link); not followed"))
                continue
            seen.add(key)
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as e:
            problems.append((display_name(os.path.relpath(d, root)),
                             f"folder cannot be read: {e.strerror or type(e).__name__}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            rel = os.path.relpath(entry.path, root)
            try:
                entry.name.encode("utf-8")
                bad_name = False
            except UnicodeEncodeError:  # undecodable bytes, kept by Python as surrogates
                bad_name = True
            if is_dir:
                if bad_name:
                    problems.append((display_name(rel), "folder name is not valid UTF-8; "
                                     "not scanned (rename it)"))
                else:
                    stack.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                if entry.is_symlink() and not os.path.exists(entry.path):
                    problems.append((display_name(rel), "broken symbolic link"))
                    continue
                if bad_name:
                    odd.append((display_name(rel), "bad-name", "file name is not valid UTF-8 "
                                "(rename the file)"))
                    continue
                try:
                    regular = entry.is_file(follow_symlinks=True)
                except OSError:
                    regular = False
                if not regular:
                    odd.append((rel, "not-a-file",
                                regular_file_problem(entry.path) or "not a regular file"))
                    continue
                found.append(rel)
    return sorted(found)


@dataclass
class FolderScan:
    """The result of scanning a face folder: usable files, skipped files and why."""

    root: str
    candidates: int = 0
    """Files with an image extension."""
    usable: list[str] = field(default_factory=list)
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    converted: dict[str, list[str]] = field(default_factory=dict)
    folder_problems: list[tuple[str, str]] = field(default_factory=list)
    reduce: dict[str, int] = field(default_factory=dict)
    """Relative path → JPEG decode scale denominator, for huge JPEGs only."""
    log_path: str | None = None

    @property
    def skipped_files(self) -> list[str]:
        return sorted(r for items in self.skipped.values() for r, _ in items)

    def counts(self) -> dict[str, int]:
        """Per-reason counts: skip reasons, then conversion reasons."""
        out = {k: len(v) for k, v in self.skipped.items() if v}
        out.update({k: len(v) for k, v in self.converted.items() if v})
        return out

    def summary(self) -> str | None:
        """The one-line warning of a scan, or None when every file was a plain image."""
        n_skip = sum(len(v) for v in self.skipped.values())
        n_conv = len({r for v in self.converted.values() for r in v})
        if not (n_skip or n_conv or self.folder_problems):
            return None
        parts = [f"FolderSource: '{self.root}'"]
        if n_skip:
            why = ", ".join(f"{len(self.skipped[k])} {v}" for k, v in SKIP_REASONS.items()
                            if self.skipped.get(k))
            examples = self.skipped_files[:3]
            parts.append(f"skipping {n_skip} of {self.candidates} files ({why}; e.g. "
                         + ", ".join(examples) + (", ..." if n_skip > 3 else "") + ")")
        if n_conv:
            why = ", ".join(f"{len(self.converted[k])} {v}" for k, v in CONVERT_REASONS.items()
                            if self.converted.get(k))
            parts.append(f"converting {n_conv} ({why})")
        if self.folder_problems:
            parts.append(f"{len(self.folder_problems)} folder problem(s) (e.g. "
                         f"{self.folder_problems[0][0]}: {self.folder_problems[0][1]})")
        text = parts[0] + ": " + "; ".join(parts[1:])
        if self.log_path:
            text += f". Details: {self.log_path}"
        return text

    def details(self) -> str:
        lines = [f"# tfface folder scan of {self.root}",
                 f"# {len(self.usable)} usable of {self.candidates} image files",
                 "# status\treason\tfile\tdetail"]
        for k, items in self.skipped.items():
            lines += [f"skipped\t{k}\t{r}\t{d}" for r, d in items]
        for k, items in self.converted.items():
            lines += [f"converted\t{k}\t{r}\t{CONVERT_REASONS[k]}" for r in items]
        lines += [f"folder\tproblem\t{r}\t{d}" for r, d in self.folder_problems]
        return "\n".join(lines) + "\n"


def scan_folder(root: str, image_size: int, min_side: int) -> FolderScan:
    """Find and classify every image file under ``root`` (see :func:`probe_image`)."""
    scan = FolderScan(root)
    odd: list[tuple[str, str, str]] = []
    rel = _walk_images(root, scan.folder_problems, odd)
    scan.candidates = len(rel) + len(odd)
    for r, why, detail in odd:
        scan.skipped.setdefault(why, []).append((r, detail))
    for r in rel:
        p = probe_image(os.path.join(root, r), image_size, min_side)
        if p.skip:
            scan.skipped.setdefault(p.skip, []).append((r, p.detail))
            continue
        scan.usable.append(r)
        for n in p.notes:
            scan.converted.setdefault(n, []).append(r)
        if p.reduce > 1:
            scan.reduce[r] = p.reduce
    return scan


def _default_log_dir() -> str:
    import tempfile

    return os.path.join(tempfile.gettempdir(), "tfface")


def _write_scan_log(scan: FolderScan, log_dir: str | None) -> None:
    """Write the scan's details (one line per file) and remember where; never raises."""
    name = "folder_scan.log"
    if log_dir is None:
        log_dir = _default_log_dir()
        digest = hashlib.blake2b(scan.root.encode("utf-8"), digest_size=4).hexdigest()
        name = f"folder_scan-{digest}.log"
    path = os.path.join(log_dir, name)
    try:
        from tfface.fileio import atomic_write

        os.makedirs(log_dir, exist_ok=True)
        atomic_write(path, scan.details().encode("utf-8"))
        scan.log_path = path
    except OSError as e:
        logger.warning("FolderSource: could not write the scan details to %s (%s)", path, e)


_JPEG_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def _decode_image_bytes(data: bytes, is_jpeg: bool, reduce: int = 1) -> np.ndarray | None:
    """Decode any supported image into uint8 RGB, or None when it cannot be decoded.

    JPEGs go through ``IMREAD_COLOR`` (fast path, EXIF orientation applied; with
    ``reduce`` 2, 4 or 8 the decoder itself scales down, so a huge photo never needs
    a full-size buffer). Other formats are read unchanged so that 16-bit samples are
    scaled (``>> 8``) rather than clipped and transparent pixels are composited on white.
    """
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        return None
    try:
        img = cv2.imdecode(buf, _JPEG_REDUCED[reduce] if is_jpeg else cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if img is None or img.size == 0:
        return None
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255)
        img = img.astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    if channels == 2:  # gray + alpha
        img = np.concatenate([np.repeat(img[:, :, :1], 3, axis=2), img[:, :, 1:]], axis=2)
        channels = 4
    if channels == 4:
        alpha = img[:, :, 3:4].astype(np.float32) * (1.0 / 255.0)
        bgr = img[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        img = (bgr + 0.5).astype(np.uint8)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


def _decoded_ok(element, ok):
    """Keep elements whose file decoded (named, not a lambda: AutoGraph needs the source)."""
    return ok


def _element_only(element, ok):
    return element


class FolderSource(FaceSource):
    """Face photos found recursively under a folder (jpg, jpeg, png, webp, bmp).

    Files are listed and sorted once, then split by a fixed hash of their relative path
    (independent of ``data.seed``, so eval faces never leak into training across runs):
    the eval split is ``min(eval_count, 10% of the files)`` files (at least one when
    there are two or more), the rest is train. A folder with a single image uses it
    for both and warns.

    The scan (:func:`scan_folder`) reads each file's header and last bytes, never the
    whole image: zero-byte, unreadable, non-image, corrupt, truncated, too small
    (shorter side below ``data.min_image_side``, default half the image size) and too
    large files are skipped; grayscale, transparent, 16-bit, CMYK and palette images
    are converted; JPEGs above :data:`MAX_DECODE_PIXELS` are decoded at reduced size.
    One warning sums it up per reason and names a log file with one line per file
    (``folder_scan.log`` in ``log_dir``, e.g. the run directory; a temporary folder
    otherwise). Symbolic-link loops and folders that cannot be read are reported, not
    followed. A file that still fails to decode is dropped from the stream (its
    ``index`` is skipped) with a warning, so a bad file never stops training; when no
    file of a split decodes at all, reading it raises :class:`SourceError` instead of
    waiting forever. Landmarks are :data:`CANONICAL_LANDMARKS` (photos are assumed
    aligned).
    """

    name = "folder"
    synthetic = False

    def __init__(self, data_cfg: DataConfig, *, log_dir: str | None = None,
                 held_out: bool = False):
        super().__init__(data_cfg)
        self.held_out = bool(held_out)
        if not data_cfg.data_dir:
            raise SourceError("the folder source needs a folder: pass --data-dir DIR")
        root = os.path.abspath(os.path.expanduser(str(data_cfg.data_dir)))
        exts = ", ".join(IMAGE_EXTENSIONS)
        if not os.path.isdir(root):
            raise SourceError(
                f"face folder '{root}' does not exist or is not a folder "
                f"(expected a folder of face photos: {exts}, searched recursively)"
            )
        self.root = root
        self.face_framing = getattr(data_cfg, "face_framing", "celeba")
        framing_landmarks(self.face_framing)  # refuse an unknown framing before scanning
        min_side = data_cfg.min_image_side
        self.min_side = int(self.image_size // 2 if min_side is None else min_side)
        scan = scan_folder(root, self.image_size, self.min_side)
        self.scan = scan
        if not scan.candidates:
            extra = ""
            if scan.folder_problems:
                where, why = scan.folder_problems[0]
                extra = f"; {len(scan.folder_problems)} folder(s) could not be scanned " \
                        f"(e.g. {where}: {why})"
            raise SourceError(
                f"no images found in '{root}' (searched recursively for {exts}, "
                f"case-insensitive{extra})"
            )
        if scan.summary() is not None:
            _write_scan_log(scan, log_dir)
            logger.warning(scan.summary())
        good = scan.usable
        if not good:
            why = ", ".join(f"{len(v)} {SKIP_REASONS[k]}" for k, v in scan.skipped.items() if v)
            raise SourceError(
                f"no usable image in '{root}': none of the {scan.candidates} files with an "
                f"image extension ({exts}) could be read as a usable image ({why})"
                + (f"; see {scan.log_path}" if scan.log_path else "")
                + (f". Lower data.min_image_side (now {self.min_side} px) to use small "
                   "images" if scan.skipped.get("too-small") else "")
            )
        self.skipped_files = scan.skipped_files
        self._reduce = {os.path.join(root, r): f for r, f in scan.reduce.items()}
        # Fixed pseudo-random order: sort by a keyed hash of the relative path. Adding
        # files to the folder does not move existing files between the splits much.
        order = sorted(
            good,
            key=lambda r: hashlib.blake2b(
                r.replace(os.sep, "/").encode("utf-8"), key=_FOLDER_SPLIT_KEY, digest_size=8
            ).digest(),
        )
        n = len(order)
        if self.held_out:
            # A folder no model trained on (e.g. faces of other people): all of it is
            # eval, in the same fixed order, up to eval_count faces; no train split.
            self.train_files, self.eval_files = [], order[: max(1, int(data_cfg.eval_count))]
        elif n == 1:
            logger.warning(
                "FolderSource: '%s' holds a single image; it is used for both the train and "
                "the eval split, so eval metrics are meaningless",
                root,
            )
            self.train_files, self.eval_files = order, order
        else:
            n_eval = max(1, min(int(data_cfg.eval_count), int(n * _EVAL_FRACTION_CAP)))
            self.train_files, self.eval_files = order[: n - n_eval], order[n - n_eval :]
        self._failed: set[str] = set()
        self._failed_in: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return (
            f"folder '{self.root}' ({len(self.train_files)} train, "
            f"{len(self.eval_files)} eval images)"
        )

    def num_examples(self, split: str) -> int | None:
        _check_split(split)
        return len(self.train_files if split == "train" else self.eval_files)

    def _decode_np(self, path: bytes, split_id: np.int64) -> tuple[np.ndarray, np.bool_]:
        size = self.image_size
        p = path.decode("utf-8", "replace")
        why = "not decodable"
        try:  # read here, not with tf.io.read_file: a file removed, locked or replaced by
            with open_regular(p) as f:  # a pipe since the scan must skip, not stop training
                data = f.read()
            img = _decode_image_bytes(data, p.lower().endswith((".jpg", ".jpeg")),
                                      self._reduce.get(p, 1))
        except OSError as e:
            img, why = None, f"unreadable: {e.strerror or type(e).__name__}"
        if img is None:
            with self._lock:
                first = p not in self._failed
                self._failed.add(p)
                count = len(self._failed)
                split = SPLITS[int(split_id)]
                failed_split = self._failed_in.setdefault(split, set())
                failed_split.add(p)
                n_split = self.num_examples(split)
                all_failed = len(failed_split) >= n_split
            if first:
                logger.warning(
                    "FolderSource: could not decode '%s' (%s); skipped (%d undecodable "
                    "file(s) so far)", p, why, count,
                )
            if all_failed:
                # Every file of the split failed: filtering them out would wait forever.
                raise SourceError(
                    f"none of the {n_split} files of the {split} split of '{self.root}' "
                    "could be decoded; check the folder (see the warnings above)"
                )
            return np.zeros((size, size, 3), np.uint8), np.bool_(False)
        return _resize_square_np(img, size), np.bool_(True)

    def _load(self, files: Sequence[str], split: str = "train") -> Callable:
        paths = tf.constant([os.path.join(self.root, f) for f in files])
        size = self.image_size
        split_id = tf.constant(SPLITS.index(split), tf.int64)
        landmarks = tf.constant(framing_landmarks(self.face_framing))

        def load(index, item):
            path = tf.gather(paths, item)
            img, ok = tf.numpy_function(
                self._decode_np, [path, split_id], (tf.uint8, tf.bool), stateful=False
            )
            img.set_shape((size, size, 3))
            ok.set_shape(())
            return {"image": img, "landmarks": landmarks, "index": index}, ok

        return load

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        _check_split(split)
        if split == "train":
            files = self.train_files
            if self.held_out:
                raise SourceError(f"'{self.root}' is read as a held-out folder (all eval); "
                                  "it has no train split")
            ds = _train_item_stream(len(files), self.cfg.seed, start, self.cfg.shuffle_files)
        else:
            files = self.eval_files
            ds = tf.data.Dataset.range(len(files)).map(lambda i: (i, i))
        ds = _keep_indices(ds, keep)
        ds = ds.map(self._load(files, split), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        return ds.filter(_decoded_ok).map(_element_only)


# --------------------------------------------------------------------------- tfds

_TFDS_LANDMARK_KEYS = (
    ("lefteye_x", "lefteye_y"),
    ("righteye_x", "righteye_y"),
    ("nose_x", "nose_y"),
    ("leftmouth_x", "leftmouth_y"),
    ("rightmouth_x", "rightmouth_y"),
)


def _tf_square_resize(img: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Center-crop and resize in-graph; returns (uint8 image, crop offset xy, crop side)."""
    shape = tf.shape(img)
    h, w = shape[0], shape[1]
    s = tf.minimum(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0 : y0 + s, x0 : x0 + s, :3]
    method = tf.cond(s > size, lambda: tf.constant(0), lambda: tf.constant(1))
    out = tf.switch_case(
        method,
        [
            lambda: tf.image.resize(crop, (size, size), method="area"),
            lambda: tf.image.resize(crop, (size, size), method="bicubic"),
        ],
    )
    out = tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)
    out.set_shape((size, size, 3))
    offset = tf.cast(tf.stack([x0, y0]), tf.float32)
    return out, offset, tf.cast(s, tf.float32)


class TfdsSource(FaceSource):
    """A TensorFlow Datasets dataset with an ``image`` feature (default ``celeb_a``).

    It never downloads: the dataset must already be prepared in ``tfds_data_dir``
    (``tfds build celeb_a --data_dir DIR`` on a machine with internet access, then copy
    DIR). CelebA's ``landmarks`` feature (pixel positions in the 178x218 image) is used
    when present, otherwise :data:`CANONICAL_LANDMARKS`.

    Splits: train reads TFDS ``train``; eval is the first ``eval_count`` records of
    ``test`` (or ``validation``; a dataset with only ``train`` holds out its last
    ``eval_count`` records). The train stream is TFDS's file shuffle (seeded) plus a
    seeded ``shuffle`` buffer, repeated; resuming at ``start`` *skips* that many
    undecoded records (cheaper than decoding, but it still reads them).
    """

    name = "tfds"
    synthetic = False
    shuffle_buffer = 4096

    def __init__(self, data_cfg: DataConfig):
        super().__init__(data_cfg)
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:  # pragma: no cover - tfds is a dependency
            raise SourceError("the tfds source needs tensorflow-datasets installed") from e
        self._tfds = tfds
        name = data_cfg.tfds_name or "celeb_a"
        data_dir = data_cfg.tfds_data_dir
        where = data_dir or "the default TFDS folder (~/tensorflow_datasets)"
        how = (
            f"Prepare it on a machine with internet access with "
            f"`tfds build {name} --data_dir DIR` (for datasets that must be downloaded by "
            f"hand, put the files in a folder and add `--manual_dir FOLDER`), copy DIR here "
            f"and pass --tfds {name} with data.tfds_data_dir=DIR. tfface never downloads."
        )
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except Exception as e:  # DatasetNotFoundError and friends
            raise SourceError(
                f"TFDS dataset '{name}' is not available in {where}: {e}. {how}"
            ) from e
        if not builder.is_prepared():
            raise SourceError(
                f"TFDS dataset '{name}' is not prepared in {where} "
                f"(looked for {builder.data_dir}). {how}"
            )
        self.builder = builder
        self.tfds_name = name
        info = builder.info
        splits = dict(info.splits)
        if "image" not in info.features:
            raise SourceError(
                f"TFDS dataset '{name}' has no 'image' feature "
                f"(features: {', '.join(info.features.keys())})"
            )
        self._has_landmarks = "landmarks" in info.features and all(
            k in info.features["landmarks"].keys() for pair in _TFDS_LANDMARK_KEYS for k in pair
        )
        if "train" not in splits:
            raise SourceError(
                f"TFDS dataset '{name}' has no 'train' split (splits: {', '.join(splits)})"
            )
        n_eval = int(data_cfg.eval_count)
        if "test" in splits or "validation" in splits:
            eval_name = "test" if "test" in splits else "validation"
            n_eval = min(n_eval, splits[eval_name].num_examples)
            self._train_split, self._eval_split = "train", f"{eval_name}[:{n_eval}]"
            self._n_train = splits["train"].num_examples
        else:
            n_total = splits["train"].num_examples
            if n_total < 2:
                raise SourceError(f"TFDS dataset '{name}' has fewer than 2 train records")
            n_eval = max(1, min(n_eval, n_total // 10))
            self._train_split = f"train[:{n_total - n_eval}]"
            self._eval_split = f"train[{n_total - n_eval}:]"
            self._n_train = n_total - n_eval
        self._n_eval = n_eval

    def describe(self) -> str:
        return f"tfds '{self.tfds_name}' ({self._n_train} train, {self._n_eval} eval)"

    def num_examples(self, split: str) -> int | None:
        _check_split(split)
        return self._n_train if split == "train" else self._n_eval

    def _read(self, split: str, shuffle: bool) -> tf.data.Dataset:
        tfds = self._tfds
        read_config = tfds.ReadConfig(
            shuffle_seed=int(self.cfg.seed) if shuffle else None,
            shuffle_reshuffle_each_iteration=True,
        )
        return self.builder.as_dataset(
            split=split,
            shuffle_files=shuffle,
            read_config=read_config,
            decoders={"image": tfds.decode.SkipDecoding()},
        )

    def _process(self, index, example):
        img = tf.io.decode_image(example["image"], channels=3, expand_animations=False)
        out, offset, side = _tf_square_resize(img, self.image_size)
        if self._has_landmarks:
            lm = example["landmarks"]
            pts = tf.stack(
                [tf.stack([tf.cast(lm[kx], tf.float32), tf.cast(lm[ky], tf.float32)])
                 for kx, ky in _TFDS_LANDMARK_KEYS]
            )
            landmarks = (pts - offset) / side
        else:
            landmarks = tf.constant(CANONICAL_LANDMARKS)
        return {"image": out, "landmarks": landmarks, "index": index}

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        _check_split(split)
        if start < 0:
            raise SourceError(f"start must be >= 0, got {start}")
        if split == "train":
            shuffle = bool(self.cfg.shuffle_files)
            ds = self._read(self._train_split, shuffle)
            if shuffle:
                ds = ds.shuffle(self.shuffle_buffer, seed=int(self.cfg.seed),
                                reshuffle_each_iteration=True)
            ds = ds.repeat().skip(int(start))
            ds = tf.data.Dataset.zip((tf.data.Dataset.counter(start=int(start)), ds))
        else:
            ds = self._read(self._eval_split, False)
            ds = tf.data.Dataset.zip((tf.data.Dataset.counter(), ds))
        ds = _keep_indices(ds, keep)  # records are read in order; decoding is skipped
        return ds.map(self._process, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# --------------------------------------------------------------------------- synthetic

_SKIN_TONES = np.array(
    [
        [250, 222, 200], [241, 205, 178], [232, 190, 160], [218, 170, 135],
        [198, 146, 110], [172, 120, 86], [145, 96, 66], [115, 74, 50], [86, 56, 40],
    ],
    np.float32,
)
_HAIR_COLORS = np.array(
    [
        [22, 18, 16], [38, 28, 22], [62, 42, 30], [92, 62, 40], [122, 84, 52],
        [140, 70, 38], [176, 134, 84], [212, 180, 124], [150, 146, 140], [205, 200, 192],
    ],
    np.float32,
)
_HAIR_WEIGHTS = np.array([3, 3, 3, 2.5, 2, 0.8, 1.2, 1.2, 0.8, 0.5])
_IRIS_COLORS = np.array(
    [[70, 42, 24], [45, 28, 18], [100, 70, 40], [70, 105, 150], [80, 110, 75],
     [110, 95, 60], [105, 118, 128]],
    np.float32,
)
_IRIS_WEIGHTS = np.array([3, 3, 2, 1.5, 1, 1, 0.7])
_AA, _SHIFT = cv2.LINE_AA, 4


def _col(color) -> tuple:
    return tuple(float(v) for v in np.atleast_1d(color))


class _Painter:
    """Anti-aliased OpenCV drawing in face coordinates (fractions of the square).

    Every point goes through the face's pose (a similarity transform: rotation, scale,
    shift), so the whole face is drawn already jittered and no image warp is needed.
    ``origin`` shifts the pixel frame, to draw into a region of interest.
    """

    def __init__(self, canvas: int, angle_deg: float, scale: float, center, shift, origin=(0, 0)):
        self.canvas, self.angle, self.scale = canvas, angle_deg, scale
        a = np.deg2rad(angle_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
        center = np.asarray(center, np.float64)
        self.A = rot * canvas
        self.b = (center - rot @ center + np.asarray(shift)) * canvas - np.asarray(origin, np.float64)

    def at(self, origin) -> "_Painter":
        p = object.__new__(_Painter)
        p.canvas, p.angle, p.scale, p.A = self.canvas, self.angle, self.scale, self.A
        p.b = self.b - np.asarray(origin, np.float64)
        return p

    def px(self, points) -> np.ndarray:
        """Face fractions -> float pixel coordinates in this painter's frame."""
        return np.asarray(points, np.float64).reshape(-1, 2) @ self.A.T + self.b

    def _fix(self, points) -> np.ndarray:
        return np.round(self.px(points) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def box(self, x0, y0, x1, y1, margin=0.0) -> tuple[int, int, int, int]:
        """Pixel bounding box of a face-space rectangle, grown by ``margin`` (fraction)."""
        c = self.px([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
        m = margin * self.canvas
        lo, hi = np.floor(c.min(0) - m), np.ceil(c.max(0) + m) + 1
        return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])

    def fill(self, img, points, color):
        cv2.fillPoly(img, [self._fix(points)], _col(color), _AA, _SHIFT)

    def line(self, img, points, color, thickness):
        t = max(1, int(round(thickness * self.scale * self.canvas)))
        cv2.polylines(img, [self._fix(points)], False, _col(color), t, _AA, _SHIFT)

    def ellipse(self, img, center, axes, color, angle=0.0, a0=0.0, a1=360.0, thickness=None):
        c = self._fix([center])[0, 0]
        ax = np.round(np.asarray(axes, np.float64) * self.scale * self.canvas * (1 << _SHIFT))
        t = -1 if thickness is None else max(1, int(round(thickness * self.scale * self.canvas)))
        cv2.ellipse(img, (int(c[0]), int(c[1])), (int(ax[0]), int(ax[1])),
                    float(angle + self.angle), float(a0), float(a1), _col(color), t, _AA, _SHIFT)


def _clip_box(box, shape):
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)


def _blend(img, box, mask_fn, content, alpha=1.0, blur=0.0):
    """Alpha-blend ``content`` (a color, or a function drawing on a copy of the region)
    into ``img`` through the anti-aliased mask ``mask_fn`` draws, inside pixel ``box``."""
    x0, y0, x1, y1 = _clip_box(box, img.shape)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    mask_fn(mask, (x0, y0))
    m = mask.astype(np.float32) * (alpha / 255.0)
    if blur > 0:
        k = int(blur // 2)
        if k >= 2 and min(m.shape) >= 4 * k:  # wide blur: cheaper at reduced resolution
            h, w = m.shape
            small = cv2.resize(m, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
            m = cv2.resize(cv2.GaussianBlur(small, (0, 0), blur / k), (w, h),
                           interpolation=cv2.INTER_LINEAR)
        else:
            m = cv2.GaussianBlur(m, (0, 0), blur)
    if callable(content):
        layer = roi.copy()
        content(layer, (x0, y0))
        layer = layer.astype(np.float32)
    else:
        layer = np.asarray(content, np.float32)
    r = roi.astype(np.float32)
    img[y0:y1, x0:x1] = (r + (layer - r) * m[:, :, None] + 0.5).astype(np.uint8)


def render_synthetic_face(seed: int, face_id: int, size: int, stream: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic frontal face, deterministically from ``(seed, stream, face_id)``.

    Args:
        seed: global seed (``data.seed``).
        face_id: which face; the same id always gives the same bytes.
        size: output side in pixels (drawn at 2x, then area-downsampled).
        stream: 0 for training faces, 1 for eval faces (disjoint random streams).

    Returns:
        ``(image uint8 [size, size, 3] RGB, landmarks float32 [5, 2])`` where the
        landmarks are the true positions of the drawn eye centers, nose tip and mouth
        corners (after pose jitter) as fractions of the square; they scatter around
        :data:`CANONICAL_LANDMARKS` like those of aligned CelebA faces.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(stream) & 0xFFFF, int(face_id)])
    u = rng.uniform
    C = 2 * int(size)

    # ---- background: solid, gradient or blotchy, built at low resolution
    bg1 = u(20, 235, 3)
    bg2 = np.clip(bg1 + u(-90, 90, 3), 0, 255)
    g = np.linspace(-0.5, 0.5, 16)
    ang = u(0, 2 * np.pi)
    t = 0.5 + g[None, :] * np.cos(ang) + g[:, None] * np.sin(ang)
    kind = rng.integers(3)
    if kind == 0:
        t = t * 0.15
    elif kind == 2:
        t = 0.5 * t + 0.5 * (0.5 + 0.3 * cv2.resize(rng.standard_normal((5, 5)), (16, 16),
                                                      interpolation=cv2.INTER_CUBIC))
    small = np.clip(bg1 + (bg2 - bg1) * np.clip(t, 0, 1)[:, :, None], 0, 255).astype(np.uint8)
    img = cv2.resize(small, (C, C), interpolation=cv2.INTER_LINEAR)

    # ---- identity: landmark geometry around the CelebA means, then shapes around it
    tone = u(0, len(_SKIN_TONES) - 1.001)
    i0 = int(tone)
    skin = _SKIN_TONES[i0] + (_SKIN_TONES[i0 + 1] - _SKIN_TONES[i0]) * (tone - i0)
    skin = np.clip(skin * u(0.94, 1.05) + u(-6, 6, 3), 0, 255)
    shadow = skin * 0.72
    hair = _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_WEIGHTS / _HAIR_WEIGHTS.sum())]
    hair = np.clip(hair * u(0.85, 1.15) + u(-8, 8, 3), 0, 255)
    bald = u() < 0.05
    hair_len = rng.choice(3, p=[0.35, 0.3, 0.35])  # short, chin length, long
    fringe = rng.choice(3, p=[0.45, 0.3, 0.25])  # none, side sweep, straight bangs

    canon = CANONICAL_LANDMARKS.astype(np.float64)
    cx = 0.497 + u(-0.006, 0.006)
    eye_y = canon[0, 1] + u(-0.012, 0.012)
    half_iod = (canon[1, 0] - canon[0, 0]) / 2 * u(0.92, 1.08)
    nose_y = eye_y + (canon[2, 1] - canon[0, 1]) * u(0.88, 1.12)
    mouth_y = nose_y + (canon[3, 1] - canon[2, 1]) * u(0.85, 1.15)
    mouth_hw = (canon[4, 0] - canon[3, 0]) / 2 * u(0.85, 1.15)
    lm = np.array(
        [[cx - half_iod, eye_y], [cx + half_iod, eye_y], [cx + u(-0.004, 0.004), nose_y],
         [cx - mouth_hw, mouth_y], [cx + mouth_hw, mouth_y]]
    )

    # pose jitter, applied to every drawn point (and to the landmarks)
    pose_center = (cx, nose_y)
    P = _Painter(C, u(-7, 7), u(0.93, 1.07), pose_center, u(-0.025, 0.025, 2))

    face_w = half_iod * u(2.05, 2.3)
    chin_y = mouth_y + u(0.115, 0.15)
    top_y = eye_y - u(0.26, 0.3)
    face_cy, face_h = (chin_y + top_y) / 2, (chin_y - top_y) / 2
    jaw, chin_pow = u(0.18, 0.42), u(1.2, 2.4)
    tt = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    s, c = np.sin(tt), np.cos(tt)
    width = np.where(s > 0, 1 - jaw * np.abs(s) ** chin_pow, 1.0)
    contour = np.stack([cx + face_w * c * width, face_cy + face_h * s], 1)

    # ---- clothes, neck, shoulders
    cloth = u(15, 230, 3) if u() < 0.7 else np.full(3, u(15, 70))
    neck_w = face_w * u(0.5, 0.62)
    sh_y = chin_y + u(0.02, 0.07)
    P.ellipse(img, (cx, sh_y + 0.26), (u(0.42, 0.55), 0.25), cloth)
    P.fill(img, [[cx - neck_w, chin_y - 0.12], [cx + neck_w, chin_y - 0.12],
                 [cx + neck_w * 1.1, sh_y + 0.01], [cx - neck_w * 1.1, sh_y + 0.01]], shadow * 1.1)
    neckline = rng.integers(3)
    if neckline == 1:  # V neck
        P.fill(img, [[cx - neck_w * 1.1, sh_y], [cx + neck_w * 1.1, sh_y],
                     [cx, sh_y + u(0.05, 0.12)]], shadow * 1.1)
    elif neckline == 2:  # round neck
        P.ellipse(img, (cx, sh_y), (neck_w * 1.15, u(0.02, 0.05)), shadow * 1.1, a0=0, a1=180)
    # shadow under the chin
    _blend(img, P.box(cx - face_w, chin_y - 0.05, cx + face_w, chin_y + 0.06, 0.02),
           lambda m, o: P.at(o).ellipse(m, (cx, chin_y + 0.005), (neck_w * 1.1, 0.03), 255),
           shadow * 0.75, 0.6, P.scale * C * 0.012)

    # ---- hair behind the head
    crown_y = top_y - u(0.02, 0.06)
    hair_w = face_w * u(1.1, 1.28)
    hair_cy = face_cy - face_h * 0.15
    hair_dark = hair * 0.8
    if not bald:
        P.ellipse(img, (cx, hair_cy), (hair_w, hair_cy - crown_y), hair_dark, a0=180, a1=360)
        if hair_len >= 1:
            bottom = mouth_y + u(0.0, 0.06) if hair_len == 1 else u(0.95, 1.1)
            side = hair_w * (1.0 if hair_len == 1 else u(1.02, 1.15))
            P.fill(img, [[cx - hair_w, hair_cy], [cx + hair_w, hair_cy],
                         [cx + side, bottom - 0.03], [cx + side * 0.9, bottom],
                         [cx - side * 0.9, bottom], [cx - side, bottom - 0.03]], hair_dark)

    # ---- ears
    ear_y = (eye_y + nose_y) / 2
    for sgn in (-1, 1):
        ex = cx + sgn * face_w * 0.96
        P.ellipse(img, (ex, ear_y), (0.03, 0.058), shadow * 1.15, angle=-sgn * 8)
        P.ellipse(img, (ex + sgn * 0.005, ear_y), (0.014, 0.036), shadow * 0.95, angle=-sgn * 8)

    # ---- face with soft shading: darker rim, light from one side
    P.fill(img, contour, skin)
    light = u(-1, 1)  # > 0: light from the image's left, so the right side is darker
    _blend(img, P.box(cx - face_w, top_y, cx + face_w, chin_y, 0.03),
           lambda m, o: (P.at(o).fill(m, contour, 255),
                         P.at(o).ellipse(m, (cx - light * face_w * 0.22, face_cy + 0.03),
                                         (face_w * 0.88, face_h * 1.0), 0)),
           shadow, u(0.3, 0.45), P.scale * C * 0.03)

    # ---- hair in front: cap over the forehead with strands, optional fringe
    hairline = eye_y - u(0.14, 0.19)
    if not bald:
        cap = [[cx + hair_w * np.cos(a), hair_cy + (hair_cy - crown_y) * np.sin(a)]
               for a in np.linspace(np.pi, 2 * np.pi, 30)]
        temple_y = hairline + u(0.05, 0.09)
        part = u(-0.6, 0.6)
        for a in np.linspace(1, -1, 21):
            cap.append([cx + face_w * 1.02 * a,
                        temple_y + (hairline - temple_y) * (1 - a * a) ** 0.5 + 0.02 * max(0, 1 - abs(a - part) * 6)])
        fringe_poly = None
        if fringe == 1:  # side sweep from the parting over part of the forehead
            sgn = rng.choice([-1, 1])
            fringe_poly = [[cx + part * face_w * 0.8, hairline - 0.05], [cx + sgn * face_w * 1.02, hairline - 0.03],
                           [cx + sgn * face_w * 1.0, hairline + u(0.07, 0.11)],
                           [cx + sgn * face_w * 0.5, hairline + u(0.04, 0.07)],
                           [cx - sgn * face_w * 0.1, hairline + u(0.0, 0.03)],
                           [cx - sgn * face_w * 0.6, hairline - 0.02]]
        elif fringe == 2:
            fy = eye_y - u(0.075, 0.1)
            fringe_poly = [[cx - face_w * 1.02, hairline - 0.03], [cx + face_w * 1.02, hairline - 0.03],
                           [cx + face_w * 0.99, fy + 0.015]]
            for a in np.linspace(1, -1, 13):
                fringe_poly.append([cx + face_w * 0.93 * a, fy + 0.008 * np.cos(a * 11)])
            fringe_poly.append([cx - face_w * 0.99, fy + 0.015])
        strands = []
        n_str = 28
        for i in range(n_str):
            a = (i + u(0, 1)) / n_str
            x_end = cx + face_w * 1.05 * (2 * a - 1)
            x_start = cx + face_w * part * 0.8 + u(-0.01, 0.01)
            y_start = crown_y + 0.03
            y_end = temple_y + (hairline - temple_y) * max(0.0, 1 - (2 * a - 1) ** 2) ** 0.5 + u(0.0, 0.03)
            if fringe == 2:
                y_end = max(y_end, eye_y - 0.09)
            k = np.linspace(0, 1, 8)[:, None]
            mid = np.array([(x_start + x_end) / 2 + (x_end - x_start) * 0.35, min(y_start, y_end) - 0.01])
            pts = (1 - k) ** 2 * [x_start, y_start] + 2 * (1 - k) * k * mid + k ** 2 * [x_end, y_end]
            strands.append((pts, hair * (0.6 if i % 2 else 1.35) + (0 if i % 2 else 12)))

        def cap_mask(m, o):
            p = P.at(o)
            p.fill(m, cap, 255)
            if fringe_poly is not None:
                p.fill(m, fringe_poly, 255)

        def cap_content(layer, o):
            p = P.at(o)
            layer[:] = np.clip(hair, 0, 255).astype(np.uint8)
            for pts, col in strands:
                p.line(layer, pts, np.clip(col, 0, 255), 0.004)

        _blend(img, P.box(cx - hair_w, crown_y, cx + hair_w, eye_y, 0.02), cap_mask, cap_content)

    # ---- nose: side shading, tip highlight, nostrils
    nx, ny = lm[2]
    nose_w = 0.036 * u(0.85, 1.2)
    nb = P.box(nx - 0.08, eye_y - 0.04, nx + 0.08, ny + 0.05, 0.02)
    side = 1 if light > 0 else -1
    _blend(img, nb, lambda m, o: P.at(o).line(
        m, [[nx + side * 0.02, eye_y + 0.005], [nx + side * 0.024, ny - 0.035], [nx + side * nose_w, ny]],
        255, 0.014), shadow, u(0.35, 0.55), P.scale * C * 0.01)
    _blend(img, nb, lambda m, o: P.at(o).ellipse(m, (nx, ny + 0.013), (nose_w * 0.95, 0.016), 255, a0=0, a1=180),
           shadow, 0.5, P.scale * C * 0.006)
    _blend(img, nb, lambda m, o: P.at(o).ellipse(m, (nx - side * 0.004, ny - 0.006), (0.011, 0.01), 255),
           np.minimum(skin * 1.12 + 12, 255), 0.5, P.scale * C * 0.008)
    for sgn in (-1, 1):
        P.ellipse(img, (nx + sgn * nose_w * 0.48, ny + 0.013), (0.0105, 0.006), skin * 0.4, angle=sgn * 15)

    # ---- cheeks (blush)
    if u() < 0.5:
        for sgn in (-1, 1):
            ccx = cx + sgn * half_iod * 1.15
            _blend(img, P.box(ccx - 0.08, nose_y - 0.06, ccx + 0.08, nose_y + 0.07, 0.02),
                   lambda m, o, ccx=ccx: P.at(o).ellipse(m, (ccx, nose_y + 0.005), (0.045, 0.028), 255),
                   np.clip(skin * [1.05, 0.78, 0.78], 0, 255), u(0.15, 0.35), P.scale * C * 0.02)

    # ---- eyes and brows
    eye_hw = 0.043 * u(0.88, 1.12)
    eye_hh = 0.0165 * u(0.8, 1.2)
    iris_col = _IRIS_COLORS[rng.choice(len(_IRIS_COLORS), p=_IRIS_WEIGHTS / _IRIS_WEIGHTS.sum())]
    iris_r = eye_hw * u(0.42, 0.5)
    gaze = u(-0.15, 0.15) * eye_hw
    white = np.array([236, 232, 226]) * u(0.82, 0.97)
    brow_col = np.clip(hair * (0.6 if hair.mean() > 140 else 0.85), 0, 255) if not bald else skin * 0.5
    brow_th, brow_h, brow_arch = u(0.008, 0.016), u(0.042, 0.06), u(0.005, 0.02)
    slant = u(-0.004, 0.006)
    for k, sgn in ((0, -1), (1, 1)):
        ex, ey = lm[k]
        a = np.linspace(0, np.pi, 16)
        # sgn * cos runs from the outer corner to the inner one; outer corners lift by `slant`
        upper = np.stack([ex + sgn * eye_hw * np.cos(a), ey - eye_hh * np.sin(a) ** 0.8 - slant * np.cos(a)], 1)
        lower = np.stack([ex - sgn * eye_hw * np.cos(a), ey + eye_hh * 0.7 * np.sin(a) + slant * np.cos(a)], 1)
        eye_poly = np.concatenate([upper, lower])
        eb = P.box(ex - eye_hw * 1.6, ey - eye_hh * 3, ex + eye_hw * 1.6, ey + eye_hh * 2, 0.01)
        _blend(img, eb, lambda m, o: P.at(o).ellipse(m, (ex, ey - 0.006), (eye_hw * 1.25, eye_hh * 2.0), 255),
               shadow, 0.35, P.scale * C * 0.01)
        ic = (ex + gaze, ey + 0.001)

        def eye_content(layer, o, ic=ic):
            p = P.at(o)
            layer[:] = white.astype(np.uint8)
            p.ellipse(layer, ic, (iris_r, iris_r), iris_col)
            p.ellipse(layer, ic, (iris_r, iris_r), iris_col * 0.5, thickness=0.004)
            p.ellipse(layer, ic, (iris_r * 0.45, iris_r * 0.45), (12, 10, 10))
            p.ellipse(layer, (ic[0] + iris_r * 0.3, ic[1] - iris_r * 0.35), (iris_r * 0.2, iris_r * 0.2),
                      (245, 245, 245))

        _blend(img, eb, lambda m, o: P.at(o).fill(m, eye_poly, 255), eye_content)
        P.line(img, upper, skin * 0.2, 0.006)  # upper lid and lashes
        P.line(img, lower[3:-3], shadow * 0.85, 0.0025)
        bt = np.linspace(0, 1, 14)  # 0: inner end, 1: outer end
        bx = ex + sgn * (bt * 2 - 1) * eye_hw * 1.25 + sgn * 0.004
        by = ey - brow_h - brow_arch * np.sin(np.pi * bt ** 0.8) + 0.006 * bt
        th = brow_th * (1 - 0.6 * bt ** 1.5)
        band = np.concatenate([np.stack([bx, by - th / 2], 1), np.stack([bx, by + th / 2], 1)[::-1]])
        P.fill(img, band, brow_col)

    # ---- mouth
    (mlx, mly), (mrx, mry) = lm[3], lm[4]
    lip = np.clip(skin * [0.9, 0.62, 0.62] + [12, 0, 4], 0, 255)
    if u() < 0.15:
        lip = np.array([165, 35, 50]) * u(0.7, 1.1)
    up_h, lo_h, smile = u(0.011, 0.019), u(0.015, 0.025), u(-0.003, 0.01)
    tl = np.linspace(0, 1, 19)
    xs = mlx + (mrx - mlx) * tl
    line_y = (mly + mry) / 2 + smile * np.sin(np.pi * tl) - smile * 0.6
    line_y = line_y - (line_y[0] - mly) * (1 - tl) - (line_y[-1] - mry) * tl  # corners stay on the landmarks
    bow = up_h * np.sin(np.pi * tl) ** 0.7 * (1 - 0.35 * np.exp(-((tl - 0.5) / 0.07) ** 2))
    seam = np.stack([xs, line_y], 1)
    P.fill(img, np.concatenate([np.stack([xs, line_y - bow], 1), seam[::-1]]), lip * 0.9)
    P.fill(img, np.concatenate([seam, np.stack([xs, line_y + lo_h * np.sin(np.pi * tl) ** 0.8], 1)[::-1]]), lip)
    P.line(img, seam, lip * 0.4, 0.004)
    mb = P.box(mlx, line_y.min() - 0.02, mrx, line_y.max() + 0.05, 0.01)
    _blend(img, mb, lambda m, o: P.at(o).ellipse(m, ((mlx + mrx) / 2, line_y.mean() + lo_h * 0.55), (0.028, 0.006), 255),
           np.minimum(lip * 1.3 + 15, 255), 0.35, P.scale * C * 0.006)
    _blend(img, mb, lambda m, o: P.at(o).ellipse(m, ((mlx + mrx) / 2, line_y.mean() + lo_h * 1.5), (0.03, 0.008), 255),
           shadow, 0.3, P.scale * C * 0.008)

    landmarks = (P.px(lm) / C).astype(np.float32)

    # ---- camera: area downsampling, global light gradient, blur, contrast, noise
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if u() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), u(0.3, 0.8))
    gl = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    d = u(-1, 1, 2) * [0.3, 0.15]
    gain = (1 + gl[None, :] * d[0] + gl[:, None] * d[1]) * u(0.85, 1.15)
    f = out.astype(np.float32)
    f = (f - 128) * gain[:, :, None] + (128 + u(-12, 12))
    f += rng.standard_normal(f.shape, dtype=np.float32) * u(1.0, 4.0)
    out = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return out, landmarks


_SYNTHETIC_BANNER_SHOWN = False


class SyntheticSource(FaceSource):
    """Procedurally drawn frontal faces: the built-in default that needs no data.

    Faces are drawn with OpenCV (anti-aliased) at twice the target size and
    area-downsampled: varied skin tones, face shapes, hair styles and colors, eyes,
    brows, nose, lips, ears, neck and clothes, backgrounds, lighting, pose jitter and
    sensor noise. Face ``i`` of the train split is fully determined by
    ``(data.seed, i)``; train faces are ids ``0 .. synthetic_count - 1`` (shuffled per
    epoch like a folder), eval faces come from a separate random stream, so the splits
    are disjoint. Landmarks are the true positions of the drawn features.

    They are NOT real photos: good for smoke tests, demos and CI, not for a model that
    must work on real faces. Creating the source logs a loud warning.
    """

    name = "synthetic"
    synthetic = True

    BANNER = (
        "\n" + "=" * 78 + "\n"
        "  Using the built-in SYNTHETIC face source: procedurally drawn faces, NOT real\n"
        "  photos. A model trained on them will not work well on real faces.\n"
        "  Pass --data-dir DIR (a folder of face photos) or --tfds celeb_a for real faces.\n"
        + "=" * 78
    )

    def __init__(self, data_cfg: DataConfig):
        super().__init__(data_cfg)
        if int(data_cfg.synthetic_count) < 1:
            raise SourceError(f"data.synthetic_count must be >= 1, got {data_cfg.synthetic_count}")
        global _SYNTHETIC_BANNER_SHOWN
        if not _SYNTHETIC_BANNER_SHOWN:  # once per process: a run builds several datasets
            logger.warning(self.BANNER)
            _SYNTHETIC_BANNER_SHOWN = True

    def describe(self) -> str:
        return (
            f"synthetic faces (procedurally drawn, not real photos; "
            f"{self.cfg.synthetic_count} train, {self.cfg.eval_count} eval, seed {self.cfg.seed})"
        )

    def num_examples(self, split: str) -> int | None:
        _check_split(split)
        return int(self.cfg.synthetic_count if split == "train" else self.cfg.eval_count)

    def _render(self, stream: int) -> Callable:
        size, seed = self.image_size, int(self.cfg.seed)

        def render_np(face_id):
            return render_synthetic_face(seed, int(face_id), size, stream)

        def render(index, face_id):
            img, lm = tf.numpy_function(render_np, [face_id], (tf.uint8, tf.float32),
                                        stateful=False)
            img.set_shape((size, size, 3))
            lm.set_shape((5, 2))
            return {"image": img, "landmarks": lm, "index": index}

        return render

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        _check_split(split)
        if split == "train":
            ds = _train_item_stream(int(self.cfg.synthetic_count), self.cfg.seed, start,
                                    self.cfg.shuffle_files)
            stream = 0
        else:
            ds = tf.data.Dataset.range(int(self.cfg.eval_count)).map(lambda i: (i, i))
            stream = 1
        return _keep_indices(ds, keep).map(self._render(stream), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)


# --------------------------------------------------------------------------- factory

_SOURCES = {"synthetic": SyntheticSource, "folder": FolderSource, "tfds": TfdsSource}


def make_source(data_cfg: DataConfig, *, log_dir: str | None = None) -> FaceSource:
    """Build the source named by ``data_cfg.source`` (``synthetic``, ``folder``, ``tfds``).

    ``log_dir`` is where a folder source writes the details of its scan
    (``folder_scan.log``; a run passes its run directory).

    Raises:
        SourceError: unknown source name, or the source cannot be used (the message
            says how to fix it).
    """
    cls = _SOURCES.get(data_cfg.source)
    if cls is None:
        raise SourceError(
            f"unknown data source '{data_cfg.source}'; choose one of: {', '.join(_SOURCES)}"
        )
    if cls is FolderSource:
        return cls(data_cfg, log_dir=log_dir)
    return cls(data_cfg)
