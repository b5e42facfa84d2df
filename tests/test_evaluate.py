"""Evaluation of runs: report files, baselines, face-recognition scoring."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pipelines import evaluate as evaluate_cli
from tfface.evaluation import face_recognition


def test_face_recognition_threshold_from_clean_pairs():
    rng = np.random.default_rng(0)
    clean = rng.uniform(-1, 1, (40, 8, 8, 3)).astype(np.float32)

    def embed(x):
        return np.asarray(x).reshape(len(x), -1)

    same = face_recognition(embed, clean, {"same": clean,
                                           "noise": rng.uniform(-1, 1, clean.shape)})
    assert same["variants"]["same"]["tpr"] == 1.0
    assert same["variants"]["same"]["fpr"] <= 0.02  # the target FPR of clean pairs
    assert same["variants"]["noise"]["tpr"] < 0.2   # unrelated faces are not matched
    assert same["variants"]["same"]["accuracy"] > same["variants"]["noise"]["accuracy"]
    with pytest.raises(ValueError, match="at least 3"):
        face_recognition(embed, clean[:2], {})


def test_evaluate_writes_report_with_baselines_and_embedding(trained_tiny_run, tmp_path):
    from tfface import keras

    emb = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, strides=2),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8)])
    emb_path = str(tmp_path / "emb.keras")
    emb.save(emb_path)
    out = tmp_path / "eval"
    code = evaluate_cli.main(["--run", trained_tiny_run, "--images", "8", "--out", str(out),
                              "--embedding", emb_path])
    assert code == 0
    report = json.load(open(out / "report.json"))
    m = report["metrics"]
    assert {"keras", "keras_composited", "input", "opencv_telea", "opencv_ns"} <= set(m)
    assert report["images"] == 8
    # Compositing keeps every pixel outside the hole, so it never loses to the input there.
    assert m["keras_composited"]["overall"]["psnr"] >= m["input"]["overall"]["psnr"] - 0.5
    fr = report["face_recognition"]["variants"]
    assert {"damaged", "keras"} <= set(fr) and all(0 <= v["tpr"] <= 1 for v in fr.values())
    md = open(out / "report.md").read()
    assert "## By occlusion" in md and "opencv_ns" in md and "Face verification" in md
    for png in ("worst_median_best.png", "bar_psnr.png", "bar_hole_ssim.png"):
        assert os.path.getsize(out / png) > 1000


def test_evaluate_errors(tmp_path, capsys):
    assert evaluate_cli.main(["--run", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
