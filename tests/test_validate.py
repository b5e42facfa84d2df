"""The validation harness: fidelity, quality next to baselines, latency, inventory, gates."""

from __future__ import annotations

import json
import os
import shutil


from tfface.export.validate import gate_failures, validate_file
from tflite import validate


def test_report_measures_fidelity_quality_latency_and_inventory(tiny_int8_file, trained_tiny_run):
    rep = validate_file(tiny_int8_file, run_dir=trained_tiny_run, images=8,
                        latency_runs=3, threads=(1, 2))
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
    assert rep["xnnpack_partitions"] == 1  # every op of the tiny V-Net runs in XNNPACK


def test_gates_pass_and_fail(tiny_int8_file, trained_tiny_run, tmp_path, capsys):
    common = ["--run", trained_tiny_run, "--images", "8", "--latency-runs", "2", "--threads", "2",
              "--out-dir", str(tmp_path)]
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
    # The other gates on the same report (the exit code path is the one above).
    rep = report[0]
    assert gate_failures(rep, None, None, 1e-6)[0].startswith("latency p50")
    assert gate_failures(rep, None, 99.0, None)[0].startswith("PSNR")
    assert gate_failures(rep, measured - 1, 5.0, 1e4) == []
    assert gate_failures({**rep, "latency": []}, None, None, 1e4) == [
        "latency not measured"]


def test_a_broken_file_fails_the_fidelity_gate(tiny_int8_file, trained_tiny_run, tmp_path):
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
    rep = validate_file(broken, run_dir=os.path.dirname(tiny_int8_file), images=8,
                        latency_runs=2, threads=(2,))
    assert rep["fidelity"]["psnr_db"] < 20
    assert gate_failures(rep, 30.0, None, None)


def test_missing_or_unloadable_file_is_a_clear_error(tmp_path, capsys):
    assert validate.main([str(tmp_path / "nope.tflite")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 10)
    assert validate.main([str(junk)]) == 2
    assert "junk.tflite" in capsys.readouterr().err


# -- files with open input dimensions ------------------------------------------------

def _fully_convolutional():
    from tfface import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((None, None, 3), name="x"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(3, 3, padding="same", activation="tanh"),
    ])


def test_runner_resizes_files_with_open_dimensions_and_rejects_wrong_shapes():
    import numpy as np
    import pytest
    import tensorflow as tf

    from tfface.export.harness import measure_latency
    from tfface.lite import LiteRunner, ShapeMismatchError

    model = _fully_convolutional()
    dynamic = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(20):
            yield [rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    dynamic_int8 = conv.convert()

    # int8: outputs on a 1/128 grid, a few levels of rounding through two layers.
    for content, max_err, mean_err in ((dynamic, 1e-5, 1e-6), (dynamic_int8, 0.15, 0.01)):
        runner = LiteRunner(content)
        assert runner.dynamic
        for shape in ((3, 16, 16, 3), (2, 24, 20, 3), (1, 16, 16, 3)):
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            got = runner(x)
            assert got.shape == shape  # the output follows the resized input
            err = np.abs(got - model(x).numpy())
            assert err.max() < max_err and err.mean() < mean_err
        assert tuple(runner.inputs[0]["shape"]) == (1, 16, 16, 3)
        lat = measure_latency(content, threads=(1,), xnnpack=(True,), runs=2,
                              input_shapes=[(1, 24, 24, 3)])
        assert lat[0]["p50_ms"] > 0
        with pytest.raises(ValueError, match="open input dimensions"):
            measure_latency(content, threads=(1,), xnnpack=(True,), runs=1)

    # A file with fixed shapes says which shape it needs instead of failing deep inside.
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec([1, 16, 16, 3])])
    fixed = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()], model).convert()
    runner = LiteRunner(fixed)
    assert not runner.dynamic
    assert runner(np.zeros((2, 16, 16, 3), np.float32)).shape == (2, 16, 16, 3)
    with pytest.raises(ShapeMismatchError, match=r"takes images of shape \(16, 16, 3\).*"
                                                 r"got \(24, 20, 3\); resize"):
        runner(np.zeros((1, 24, 20, 3), np.float32))


# -- super-resolution quality ---------------------------------------------------------

def test_sr_quality_in_rgb_and_y_per_degradation_next_to_bicubic(tiny_sr_float_file,
                                                                 trained_tiny_sr_run):
    import numpy as np
    import tensorflow as tf

    from tfface.config import Config
    from tfface.evaluation import sr_eval_batches

    rep = validate_file(tiny_sr_float_file, run_dir=trained_tiny_sr_run, images=4,
                        latency_runs=2, threads=(2,), degradations=["none", "classic"])
    assert rep["task"] == "sr" and rep["scale"] == 4
    assert rep["fidelity"]["psnr_db"] >= 40.0  # float file: the same computation as Keras
    q = rep["quality"]
    assert set(q) == {"tflite", "keras", "input", "bicubic"}
    for name in q:
        assert {k: v["images"] for k, v in q[name]["by_degradation"].items()} == \
            {"none": 4, "classic": 4}
        assert q[name]["by_scale"]["x4"]["images"] == 8
        o = q[name]["overall"]
        assert 5 < o["psnr"] < 60 and 5 < o["psnr_y"] < 60 and 0 < o["ssim_y"] <= 1
    assert abs(q["tflite"]["overall"]["psnr_y"] - q["keras"]["overall"]["psnr_y"]) < 0.5
    none, classic = (q["bicubic"]["by_degradation"][k] for k in ("none", "classic"))
    # Bicubic beats pixel repetition of a clean downscale; blur, noise and JPEG cost more.
    assert none["psnr"] > q["input"]["by_degradation"]["none"]["psnr"]
    assert none["psnr_y"] > q["input"]["by_degradation"]["none"]["psnr_y"]
    assert classic["psnr"] < none["psnr"]

    # The Y convention, recomputed by hand: BT.601 luma of the 8-bit images, 4-px crop.
    cfg = Config.load(os.path.join(trained_tiny_sr_run, "config.json"))
    b = sr_eval_batches(cfg, 4, ["none"])[0]
    up = tf.image.resize(b["lr"], [32, 32], method="bicubic").numpy()

    def y(img):
        px = np.clip(np.round((img + 1) * 127.5), 0, 255)
        return (16 + px @ np.array([65.481, 128.553, 24.966]) / 255)[:, 4:-4, 4:-4]

    mse = ((y(up) - y(b["clean"])) ** 2).mean(axis=(1, 2))
    assert abs(np.mean(10 * np.log10(255**2 / mse)) - none["psnr_y"]) < 1e-3


def test_sr_cli_table_and_unknown_degradation(tiny_sr_float_file, trained_tiny_sr_run, tmp_path,
                                              capsys):
    common = ["--run", trained_tiny_sr_run, "--images", "4", "--latency-runs", "2", "--threads",
              "2", "--out-dir", str(tmp_path)]
    assert validate.main([tiny_sr_float_file, *common]) == 0
    table = open(tmp_path / "validation.md").read()
    assert "Y PSNR (crop)" in table and "bicubic PSNR" in table
    report = json.load(open(tmp_path / "validation.json"))[0]
    assert set(report["quality"]["tflite"]["by_degradation"]) == {"none"}  # the run's own
    assert validate.main([tiny_sr_float_file, "--degradations", "none", "blurry", *common]) == 2
    assert "unknown degradation 'blurry'" in capsys.readouterr().err


def test_leaky_form_prelu_keeps_the_function_and_runs_all_of_srgan_int8_in_xnnpack():
    import numpy as np

    from tfface import keras
    from tfface.config import resolve
    from tfface.models import get_arch
    from tfface.models.layers import LeakyFormPReLU, xnnpack_int8_form
    from tfface.export.harness import delegate_partitions, op_profile
    from tfface.lite import LiteRunner
    from tfface.export.quantize import QuantizationConfig, converter_for, representative_from

    cfg = resolve("srgan", "tiny", {"data": {"image_size": 16}})  # 4 -> 16 px
    keras.utils.set_random_seed(0)
    gen = get_arch("srgan").build_generator(cfg)
    rng = np.random.default_rng(0)
    for layer in gen.layers:  # trained-looking slopes, some negative
        if type(layer) is keras.layers.PReLU:
            layer.set_weights([rng.uniform(-0.2, 0.5, layer.get_weights()[0].shape)])
    alt = xnnpack_int8_form(gen)
    assert sum(isinstance(layer, LeakyFormPReLU) for layer in alt.layers) == 5
    x = rng.uniform(-1, 1, (4, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(alt(x).numpy(), gen(x).numpy(), atol=1e-5)
    assert xnnpack_int8_form(alt) is alt  # nothing left to replace

    rep = representative_from([rng.uniform(-1, 1, (1, 4, 4, 3)).astype(np.float32)
                               for _ in range(16)])
    files = {name: converter_for(m, QuantizationConfig.for_int8(), rep,
                                 xnnpack_form=False).convert()
             for name, m in (("prelu", gen), ("leaky", alt))}
    # What tflite.convert writes: the leaky form, applied by converter_for itself.
    assert delegate_partitions(
        converter_for(gen, QuantizationConfig.for_int8(), rep).convert()) == 1
    # Int8 PRELU falls back to the built-in kernels: one XNNPACK partition per PReLU + 1.
    assert delegate_partitions(files["prelu"]) == 6
    assert {r["op"] for r in op_profile(files["prelu"], runs=1, warmup=0)
            if not r["delegated"]} == {"PRELU"}
    assert delegate_partitions(files["leaky"]) == 1
    assert all(r["delegated"] for r in op_profile(files["leaky"], runs=1, warmup=0))
    ref = gen(x).numpy()
    for content in files.values():
        assert np.max(np.abs(LiteRunner(content)(x) - ref)) < 0.1
