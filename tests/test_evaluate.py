"""Evaluation of runs: report files, baselines, face-recognition scoring."""

from __future__ import annotations

import json
import os
import shutil

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
    import tensorflow as tf

    emb_path = str(tmp_path / "emb.tflite")  # embeddings are accepted as .tflite only
    with open(emb_path, "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_keras_model(emb).convert())
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


def test_method_names_tell_files_of_the_same_name_apart():
    names = evaluate_cli.method_names
    assert names(["a/model_int8.tflite", "b/model_fp16.tflite"]) == ["model_int8", "model_fp16"]
    assert names(["x/vnet/model_int8.tflite", "x/srgan/model_int8.tflite"]) == [
        "vnet/model_int8", "srgan/model_int8"]
    assert names(["r1/a/m.tflite", "r2/a/m.tflite", "c.tflite"]) == ["r1/a/m", "r2/a/m", "c"]
    assert names(["m.tflite", "m.tflite"]) == ["m", "m#2"]  # the same file twice
    assert names(["keras.tflite"], taken=["keras"]) != ["keras"]


def test_evaluate_errors(tmp_path, capsys):
    assert evaluate_cli.main(["--run", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_sr_scores_crop_the_border_for_y_only():
    from tfface.evaluation import score_sr_batch

    rng = np.random.default_rng(1)
    clean = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    batch = {"clean": clean, "lr": clean[:, ::4, ::4], "degradation": np.array(["none"] * 2)}
    pred = clean.copy()
    pred[:, :4] = -pred[:, :4]  # damage only the 4-px top border (x4: cropped for Y)
    rows = score_sr_batch(batch, pred)
    assert all(r["psnr_y"] == 100.0 and r["ssim_y"] > 0.999 for r in rows)
    assert all(r["psnr"] < 30 and r["scale"] == 4 for r in rows)
    # sharpness reads the same cropped region: the damaged border does not count
    assert all(r["sharpness"] == pytest.approx(1.0, abs=1e-5) for r in rows)
    flat = np.zeros_like(clean)
    assert all(r["sharpness"] < 0.05 for r in score_sr_batch(batch, flat))
    with pytest.raises(ValueError, match="SR output has shape"):
        score_sr_batch(batch, pred[:, :16, :16])


def test_evaluate_sr_run_per_scale_and_degradation(trained_tiny_sr_run, tiny_sr_float_file,
                                                    tmp_path):
    import cv2

    # A second file of the same name from another folder gets its own row (a shared
    # basename used to merge the two into one).
    twin = tmp_path / "phone" / os.path.basename(tiny_sr_float_file)
    twin.parent.mkdir()
    shutil.copy(tiny_sr_float_file, twin)
    out = tmp_path / "eval"
    code = evaluate_cli.main(["--run", trained_tiny_sr_run, "--images", "4", "--out", str(out),
                              "--tflite", tiny_sr_float_file, str(twin),
                              "--degradations", "none", "classic"])
    assert code == 0
    report = json.load(open(out / "report.json"))
    assert report["task"] == "sr" and report["scale"] == 4 and report["images"] == 8
    m = report["metrics"]
    first = "/".join(os.path.normpath(tiny_sr_float_file).split(os.sep)[-2:])[:-len(".tflite")]
    assert set(m) == {"keras", first, "phone/model_float", "input", "bicubic"}
    assert m[first]["overall"] == m.pop("phone/model_float")["overall"]
    m["model_float"] = m.pop(first)
    for s in m.values():
        assert s["by_scale"]["x4"]["images"] == 8
        assert set(s["by_degradation"]) == {"none", "classic"}
        assert 5 < s["overall"]["psnr_y"] < 60 and 0 < s["overall"]["ssim_y"] <= 1
    assert abs(m["model_float"]["overall"]["psnr"] - m["keras"]["overall"]["psnr"]) < 0.1
    none = {k: m[k]["by_degradation"]["none"] for k in ("bicubic", "input")}
    assert none["bicubic"]["psnr"] > none["input"]["psnr"]
    # bicubic is smoother than the real face
    assert 0.2 < none["bicubic"]["sharpness"] < 0.95
    md = open(out / "report.md").read()
    assert "## By scale" in md and "## By degradation" in md and "psnr_y" in md
    assert "| bicubic |" in md and "4 pixels cropped" in md
    grid = cv2.imread(str(out / "worst_median_best.png"))
    # input | bicubic | keras | both files | target; the files' folder/name headers
    # take two lines
    assert grid.shape[1] == 6 * 128 and grid.shape[0] == 44 + 3 * 128
    for png in ("bar_psnr.png", "bar_psnr_y.png", "bar_ssim_y.png"):
        assert os.path.getsize(out / png) > 1000


def test_evaluate_sr_errors(trained_tiny_sr_run, trained_tiny_run, tmp_path, capsys):
    assert evaluate_cli.main(["--run", trained_tiny_run, "--degradations", "none",
                              "--out", str(tmp_path)]) == 2
    assert "super-resolution runs only" in capsys.readouterr().err
    assert evaluate_cli.main(["--run", trained_tiny_sr_run, "--degradations", "sharp",
                              "--out", str(tmp_path)]) == 2
    assert "unknown degradation 'sharp'" in capsys.readouterr().err


def test_a_file_converted_from_other_weights_than_the_scored_ones_is_named(trained_tiny_run,
                                                                          tmp_path, capsys):
    """A run's best weights (highest PSNR) and last weights (a GAN fine-tune's sharpest)
    differ; ``tflite.convert`` converts ``best`` by default. The card records the weight
    file and its hash, the converter says when ``last`` differs, and ``evaluate`` names a
    file whose rows come from other weights than its ``keras`` rows."""
    from tfface.cards import file_sha256
    from tfface.rundir import load_generator
    from tflite import convert

    run = str(tmp_path / "run")
    shutil.copytree(trained_tiny_run, run, ignore=shutil.ignore_patterns("*.tflite", "eval"))
    _, gen = load_generator(run, "best")
    kernel = next(w for w in gen.weights if "kernel" in w.name)
    kernel.assign(kernel * 0.5)  # other "last" weights
    gen.save_weights(os.path.join(run, "last.weights.h5"))
    best_sha = file_sha256(os.path.join(run, "best.weights.h5"))
    assert best_sha != file_sha256(os.path.join(run, "last.weights.h5"))

    assert convert.main(["--fp16", "--run", run]) == 0
    assert "its last weights (last.weights.h5) differ" in capsys.readouterr().out
    card = json.load(open(os.path.join(run, "model_fp16.json")))
    assert card["source_weights"] == {"file": "best.weights.h5", "sha256": best_sha}

    out = tmp_path / "eval"
    args = ["--run", run, "--images", "4", "--tflite", os.path.join(run, "model_fp16.tflite")]
    assert evaluate_cli.main(args + ["--weights", "last", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "was converted from best.weights.h5, not from the last.weights.h5" in printed
    assert "--weights best scores those" in printed
    report = json.load(open(out / "report.json"))
    assert len(report["notes"]) == 1 and "**Note:**" in open(out / "report.md").read()
    # scored against the weights it came from: no note; and the last weights convert
    # without one
    assert evaluate_cli.main(args + ["--weights", "best", "--out", str(tmp_path / "e2")]) == 0
    assert "note:" not in capsys.readouterr().out
    assert "notes" not in json.load(open(tmp_path / "e2" / "report.json"))
    assert convert.main(["--fp16", "--run", run, "--weights", "last"]) == 0
    assert "differ" not in capsys.readouterr().out
    assert json.load(open(os.path.join(run, "model_fp16.json")))["source_weights"]["file"] \
        == "last.weights.h5"
