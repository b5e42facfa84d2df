"""The validation harness: fidelity, quality next to baselines, latency, inventory, gates."""

from __future__ import annotations

import json
import os
import shutil


from tflite import validate


def test_report_measures_fidelity_quality_latency_and_inventory(tiny_int8_file, trained_tiny_run):
    rep = validate.validate_file(tiny_int8_file, images=8, latency_runs=3, threads=(1, 2))
    assert rep["fidelity"]["psnr_db"] >= 36.0  # the documented int8 floor (tests/test_convert.py)
    assert rep["fidelity"]["images"] == 8
    q = rep["quality"]
    assert set(q) == {"tflite", "keras", "input", "opencv_telea", "opencv_ns"}
    # The damaged input differs from the target only in the hole.
    assert q["input"]["overall"]["psnr"] < 40 and q["input"]["overall"]["hole_psnr"] < 20
    for name in ("tflite", "opencv_ns"):
        o = q[name]["overall"]
        assert 5 < o["psnr"] < 60 and 0 < o["ssim"] <= 1 and 0 < o["ms_ssim"] <= 1
    assert abs(q["tflite"]["overall"]["psnr"] - q["keras"]["overall"]["psnr"]) < 1.0
    assert sum(v["images"] for v in q["tflite"]["by_occlusion"].values()) == 8
    assert all(k.endswith("%") for k in q["tflite"]["by_area_bin"])
    assert len(rep["latency"]) == 4 and all(r["p50_ms"] > 0 for r in rep["latency"])
    assert rep["ops"]["float_ops"] == [] and rep["peak_memory_mb"] > 50


def test_gates_pass_and_fail(tiny_int8_file, tmp_path, capsys):
    common = ["--images", "8", "--latency-runs", "2", "--threads", "2", "--out-dir", str(tmp_path)]
    assert validate.main([tiny_int8_file, "--min-fidelity-db", "30", "--max-latency-ms", "10000",
                          *common]) == 0
    table = open(tmp_path / "validation.md").read()
    assert "model_int8.tflite" in table and "| int8 |" in table
    import cv2

    grid = cv2.imread(str(tmp_path / "validation_faces.png"))
    assert grid is not None and grid.shape[1] == 3 * 128  # input | file | target columns
    for png in ("quality_vs_latency.png", "quality_vs_size.png"):
        assert cv2.imread(str(tmp_path / png)) is not None
    report = json.load(open(tmp_path / "validation.json"))
    measured = report[0]["fidelity"]["psnr_db"]
    # A threshold above the measured value fails, and says why.
    assert validate.main([tiny_int8_file, "--min-fidelity-db", str(measured + 1), *common]) == 1
    assert "fidelity" in capsys.readouterr().err
    assert validate.main([tiny_int8_file, "--max-latency-ms", "0.000001", *common]) == 1
    assert validate.main([tiny_int8_file, "--min-psnr", "99", *common]) == 1


def test_a_broken_file_fails_the_fidelity_gate(tiny_int8_file, tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    from tensorflow.lite.python import schema_py_generated as schema_fb

    broken = str(tmp_path / "model_int8.tflite")
    model = fbu.read_model(tiny_int8_file)
    # Scramble the weights but keep shapes (int32 tensors) and metadata intact, so the
    # file still runs but computes nonsense.
    keep = {t.buffer for t in model.subgraphs[0].tensors if t.type == schema_fb.TensorType.INT32}
    keep |= {md.buffer for md in model.metadata}
    fbu.randomize_weights(model, random_seed=3, buffers_to_skip=sorted(keep))
    fbu.write_model(model, broken)
    shutil.copy(os.path.splitext(tiny_int8_file)[0] + ".json", tmp_path / "model_int8.json")
    rep = validate.validate_file(broken, images=8, latency_runs=2, threads=(2,))
    assert rep["fidelity"]["psnr_db"] < 20
    assert validate.gate_failures(rep, 30.0, None, None)


def test_missing_or_unloadable_file_is_a_clear_error(tmp_path, capsys):
    assert validate.main([str(tmp_path / "nope.tflite")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 10)
    assert validate.main([str(junk)]) == 2
    assert "junk.tflite" in capsys.readouterr().err
