"""Report figures: image grids (OpenCV) and charts (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from tfface.imageio import to_uint8, write_image


def _header_lines(name: str, lines: int) -> list[str]:
    if lines == 1 or "/" not in name:
        return [name]
    head, _, tail = name.rpartition("/")
    return [head + "/", tail]


def image_grid(columns: Mapping[str, np.ndarray], path: str, min_cell: int = 128) -> str:
    """Write a PNG grid: one column per named batch ([-1, 1], same N), a labelled header
    (a long ``folder/file`` name, e.g. a .tflite file's method name, on two lines).

    Small images are enlarged (nearest) to at least ``min_cell`` pixels; a column with
    fewer pixels than the others (a low-resolution input) is enlarged to match.
    """
    import cv2

    size = max(v.shape[1] for v in columns.values())
    k = max(1, -(-min_cell // size))
    cell = size * k
    lines = 2 if any(len(n) > cell // 8 and "/" in n for n in columns) else 1
    cols = []
    for name, batch in columns.items():
        imgs = to_uint8(batch)
        if imgs.shape[-1] == 1:
            imgs = np.repeat(imgs, 3, axis=-1)
        reps = cell // imgs.shape[1]
        imgs = np.repeat(np.repeat(imgs, reps, axis=1), reps, axis=2)
        header = np.full((22 * lines, cell, 3), 255, np.uint8)
        for i, text in enumerate(_header_lines(name, lines)):
            cv2.putText(header, text[: max(4, cell // 8)], (3, 16 + 22 * i),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cols.append(np.concatenate([header, *imgs], axis=0))
    write_image(path, np.concatenate(cols, axis=1))
    return path


def scatter(points: Sequence[dict], x: str, y: str, label: str, path: str,
            xlabel: str, ylabel: str, title: str) -> str:
    """Write a labelled scatter plot PNG of ``points`` (dicts with keys x, y, label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    for p in points:
        if p.get(x) is None or p.get(y) is None:
            continue
        ax.scatter(p[x], p[y], s=30)
        ax.annotate(str(p[label]), (p[x], p[y]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def bar_chart(values: Mapping[str, float], path: str, ylabel: str, title: str) -> str:
    """Write a bar chart PNG of named values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k, v in values.items() if v is not None]
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(names) + 1.5), 3.4), dpi=110)
    bars = ax.bar(names, [values[n] for n in names], color="#4c72b0")
    ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str,
               xlabel: str, ylabel: str, title: str, hline: float | None = None) -> str:
    """Write a line chart PNG: one named ``(xs, ys)`` series per line (markers at the
    points), with an optional horizontal reference line at ``hline``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.6), dpi=110)
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o", markersize=3, label=name)
    if hline is not None:
        ax.axhline(hline, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
