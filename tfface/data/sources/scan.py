"""Folder scanning: classify image files from their headers, and decode them.

:func:`scan_folder` walks a folder and probes every image file (:func:`probe_image`:
header and tail bytes only, never a full decode) so that :class:`FolderSource
<tfface.data.sources.folder.FolderSource>` skips broken files up front and converts odd
ones; :func:`_decode_image_bytes` is the decoder of the usable files, and :func:`read_photo`
reads one photo with the same checks (restoring and preparing photos use it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from tfface.data.sources.base import IMAGE_EXTENSIONS
from tfface.fileio import (NotRegularFileError, atomic_write, display_name, open_regular,
                           regular_file_problem)

logger = logging.getLogger(__name__)

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
    try:
        with warnings.catch_warnings():  # the size limit is ours (MAX_DECODE_PIXELS)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return int(im.size[0]), int(im.size[1]), str(im.mode)
    except Exception:  # Pillow raises many types on broken headers
        return None


def _fully_decodes(path: str) -> bool:
    """True when Pillow decodes the whole file (it rejects truncated data; OpenCV's JPEG
    decoder would fill the missing rows with gray instead)."""
    try:
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


class PhotoError(ValueError):
    """A photo cannot be read; the message says why."""


PHOTO_MAX_PIXELS = 100_000_000
"""Largest photo :func:`read_photo` decodes (e.g. 12000x8000); larger files are refused."""


def read_photo(path: str, max_pixels: int = PHOTO_MAX_PIXELS) -> np.ndarray:
    """A photo file as uint8 RGB, checked from its header before decoding.

    Raises:
        PhotoError: the file is empty, unreadable, not an image, truncated, or larger
            than ``max_pixels`` (its header is read first, so a file that claims absurd
            dimensions is never decoded); the message says which.
    """
    probe = probe_image(path, 1, 1, max_pixels=max_pixels, reduce_jpeg=False)
    if probe.skip:
        detail = f" ({probe.detail})" if probe.detail else ""
        raise PhotoError(f"{SKIP_REASONS[probe.skip]}{detail}")
    try:
        with open_regular(path) as f:
            data = f.read()
    except OSError as e:
        raise PhotoError(f"unreadable ({e.strerror or type(e).__name__})") from e
    rgb = _decode_image_bytes(data, path.lower().endswith((".jpg", ".jpeg")))
    if rgb is None:
        raise PhotoError("not a decodable image")
    return rgb
