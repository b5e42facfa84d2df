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

The package is split by source: :mod:`~tfface.data.sources.base` (the contract, splits,
landmarks, errors), :mod:`~tfface.data.sources.scan` (probing and decoding folder
images), :mod:`~tfface.data.sources.folder`, :mod:`~tfface.data.sources.tfds` and
:mod:`~tfface.data.sources.synthetic`; :func:`make_source` picks one by name.
"""

from __future__ import annotations

from tfface.config import DataConfig
from tfface.data.sources.base import (  # noqa: F401  (the names importers use)
    IMAGE_EXTENSIONS, SPLITS, FaceSource, SourceError,
)
from tfface.data.sources.folder import FolderSource  # noqa: F401
from tfface.data.sources.scan import (  # noqa: F401
    CONVERT_REASONS, MAX_DECODE_PIXELS, SKIP_REASONS, FolderScan, ImageProbe, probe_image,
    scan_folder,
)
from tfface.data.sources.synthetic import SyntheticSource, render_synthetic_face  # noqa: F401
from tfface.data.sources.tfds import TfdsSource  # noqa: F401
from tfface.framing import CANONICAL_LANDMARKS, LANDMARK_NAMES, framing_landmarks  # noqa: F401

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
