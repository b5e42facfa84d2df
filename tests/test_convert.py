"""TFLite conversion of a trained run: int8 file, model card, agreement with Keras."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tfface.cards import read_card
from tfface.export.convert import convert_model, fidelity_batch, representative_inputs
from tfface.export.metadata import op_inventory
from tfface.export.quantize import QuantizationConfig
from tfface.lite import LiteRunner, dequantize, quantize
from tflite import convert

# Measured on the tiny V-Net (ReLU6, clip head, 180 seeded steps): int8 42.7 dB on the
# eval batch (45.8 dB on training inputs). With plain ReLU the same model gave
# 25.8-28.9 dB; a broken conversion gives ~10 dB. fp16 is far above its floor.
INT8_FIDELITY_FLOOR_DB = 36.0
FP16_FIDELITY_FLOOR_DB = 45.0


def test_quantize_roundtrip_is_exact_for_known_parameters():
    # x / scale = -127.5, 0, 63.75, 126.5, 127.5: halves round away from zero (as in
    # TFLite), then saturate to int8.
    q = quantize(np.array([-1.0, 0.0, 0.5, 126.5 / 127.5, 1.0]), scale=1 / 127.5,
                 zero_point=0, dtype=np.int8)
    assert q.tolist() == [-128, 0, 64, 127, 127]
    assert quantize(np.array([2.5, -2.5]), 1.0, 0, np.int8).tolist() == [3, -3]
    u = quantize(np.array([-1.0, 1.0, 2.0]), scale=2 / 255, zero_point=128, dtype=np.uint8)
    assert u.tolist() == [0, 255, 255]  # saturates
    np.testing.assert_allclose(dequantize(np.array([0, 128, 255]), 2 / 255, 128),
                               [-128 * 2 / 255, 0.0, 127 * 2 / 255], rtol=1e-6)


def test_int8_cli_writes_a_file_that_agrees_with_keras(trained_tiny_run, capsys):
    out = os.path.join(trained_tiny_run, "export")
    assert convert.main(["--int8", "--run", trained_tiny_run, "--samples", "100",
                         "--out-dir", out]) == 0
    printed = capsys.readouterr().out
    tfl = os.path.join(out, "model_int8.tflite")
    assert os.path.abspath(tfl) in printed
    card = json.load(open(os.path.join(out, "model_int8.json")))
    assert card["fidelity"]["psnr_db_vs_keras"] >= INT8_FIDELITY_FLOOR_DB

    # The card describes the file's tensors exactly.
    runner = LiteRunner(tfl)
    (inp,), (outp,) = card["inputs"], card["outputs"]
    assert inp["name"] == runner.inputs[0]["name"] == "serving_default_occluded:0"
    assert inp["shape"] == [1, 64, 64, 3] == list(runner.inputs[0]["shape"])
    assert inp["dtype"] == "float32" and inp["normalization"]["mean"] == 127.5
    assert outp["denormalization"]["mean"] == -1.0
    assert card["task"] == "inpaint" and card["architecture"] == "vnet"
    assert card["training_data"]["source"] == "synthetic"
    assert card["size_bytes"] == os.path.getsize(tfl)

    # Every compute op runs in int8: no float tensors except the float I/O edges.
    interp = runner.interpreter
    float_tensors = [t["name"] for t in interp.get_tensor_details()
                     if t["dtype"] == np.float32]
    assert len(float_tensors) <= 2, float_tensors
    ops = card["ops"]
    assert ops["float_ops"] == [] and ops["integer_ops"] == ops["compute_ops"] > 10
    assert ops["counts"]["CONV_2D"] >= 8 and ops["counts"]["QUANTIZE"] == 1
    assert card["min_runtime_version"].count(".") == 2

    # The same card is embedded in the file, so it survives losing the JSON; the JSON
    # adds the file's hash (a card that does not belong to the file is not used).
    assert read_card(tfl) == {k: v for k, v in card.items() if k != "file_sha256"}
    import hashlib

    assert card["file_sha256"] == hashlib.sha256(open(tfl, "rb").read()).hexdigest()


def test_int8_with_uint8_io(trained_tiny_run, tmp_path):
    """int8 with uint8 input and output. (The run's fp16 file is checked by
    test_convert_without_run_takes_the_most_recent_run_under_runs, which converts it.)"""
    from tfface.rundir import load_generator

    cfg, model = load_generator(trained_tiny_run)
    batch = fidelity_batch(cfg, 4)
    rep = representative_inputs(cfg, 100)
    i8 = convert_model(model, cfg, QuantizationConfig.for_int8(io="uint8"),
                       str(tmp_path), representative=rep, check_batch=batch)
    (inp,) = i8.card["inputs"]
    assert inp["dtype"] == "uint8" and inp["quantization"]["scale"] > 0
    assert i8.card["fidelity"]["psnr_db_vs_keras"] >= INT8_FIDELITY_FLOOR_DB
    assert os.path.basename(i8.path) == "model_int8_iouint8.tflite"


def test_convert_cli_errors(tmp_path, capsys):
    assert convert.main(["--run", str(tmp_path)]) == 2
    assert "choose at least one mode" in capsys.readouterr().err
    assert convert.main(["--int8", "--run", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert convert.main(["--int8", "--samples", "10", "--run", str(tmp_path)]) == 2
    assert "at least 100" in capsys.readouterr().err


def test_convert_without_run_takes_the_most_recent_run_under_runs(trained_tiny_run, tmp_path,
                                                                  monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert convert.main(["--fp16"]) == 2  # no runs/ at all: one line says how to make one
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no trained run under runs/" in err and "python -m pipelines.train" in err
    os.makedirs("runs/not-a-run")  # folders without config and weights are not runs
    os.makedirs("runs/old")
    for name in ("config.json", "best.weights.h5"):
        open(os.path.join("runs/old", name), "w").close()
        os.utime(os.path.join("runs/old", name), (1e9, 1e9))
    shutil.copytree(trained_tiny_run, "runs/new")
    from tfface.rundir import latest_run

    assert latest_run() == os.path.join("runs", "new")
    assert convert.main(["--fp16"]) == 0
    out = capsys.readouterr().out
    assert "Converting the most recent run under runs/: runs/new" in out
    card = json.load(open("runs/new/model_fp16.json"))
    assert card["source_run"] == "runs/new"  # relative, as the user named it
    # The fp16 file of the trained run follows Keras closely and keeps float compute
    # (weights are dequantized once at load time).
    assert card["fidelity"]["psnr_db_vs_keras"] >= FP16_FIDELITY_FLOOR_DB
    assert op_inventory("runs/new/model_fp16.tflite")["integer_ops"] == 0
    assert read_card("runs/new/model_fp16.tflite")["quantization"]["mode"] == "fp16"
    assert not os.path.exists("runs/old/model_fp16.tflite")


def test_a_model_with_the_mask_as_second_input_converts_and_runs_by_name(tmp_path):
    from conftest import tiny_config
    from tfface.models import get_arch

    cfg = tiny_config()
    cfg.model.params["mask_input"] = True
    model = get_arch("vnet").build_generator(cfg)
    batch = fidelity_batch(cfg, 4)
    fp16 = convert_model(model, cfg, QuantizationConfig.for_fp16(), str(tmp_path),
                         check_batch=batch)
    assert sorted(LiteRunner(fp16.path).input_keys) == ["mask", "occluded"]
    # The card says what each input is: the mask is one 0/1 channel, not an RGB image.
    inputs = {i["key"]: i for i in fp16.card["inputs"]}
    assert inputs["mask"]["kind"] == "mask" and inputs["mask"]["shape"][-1] == 1
    assert inputs["mask"]["value_range"] == [0.0, 1.0]
    assert "RGB" not in inputs["mask"]["layout"] and "127.5" not in json.dumps(inputs["mask"])
    assert inputs["occluded"]["kind"] == "image" and inputs["occluded"]["value_range"] == [-1, 1]
    assert inputs["occluded"]["normalization"]["formula"].startswith("x = (pixel - 127.5)")
    assert fp16.card["outputs"][0]["key"] == "restored"
    assert fp16.card["fidelity"]["psnr_db_vs_keras"] >= FP16_FIDELITY_FLOOR_DB
    rep = representative_inputs(cfg, 100)
    assert len(rep) == 100 and [x.shape for x in rep[0]] == [(1, 64, 64, 3), (1, 64, 64, 1)]
    i8 = convert_model(model, cfg, QuantizationConfig.for_int8(), str(tmp_path),
                       representative=rep, check_batch=batch)
    assert i8.card["ops"]["float_ops"] == []
    with pytest.raises(ValueError, match="at least 100"):
        representative_inputs(cfg, 10)


def test_input_size_converts_the_same_weights_for_larger_tiles(trained_tiny_sr_run, tmp_path,
                                                               capsys):
    """``--input-size``: a fully convolutional run converts at another input side with its
    own weights (how the photo path's 64 px SR twins are made); a size the model cannot
    take is one error line, and nothing is written."""
    from tfface.rundir import load_generator

    out = str(tmp_path / "tiles")
    assert convert.main(["--float", "--run", trained_tiny_sr_run, "--input-size", "16",
                         "--out-dir", out]) == 0
    capsys.readouterr()
    tfl = os.path.join(out, "model_float.tflite")
    runner = LiteRunner(tfl)
    assert list(runner.inputs[0]["shape"]) == [1, 16, 16, 3]
    assert list(runner.outputs[0]["shape"]) == [1, 64, 64, 3]  # x4
    card = json.load(open(os.path.join(out, "model_float.json")))
    assert card["inputs"][0]["shape"] == [1, 16, 16, 3] and card["scale"] == 4
    assert card["fidelity"]["psnr_db_vs_keras"] >= FP16_FIDELITY_FLOOR_DB
    _, small = load_generator(trained_tiny_sr_run)
    cfg, big = load_generator(trained_tiny_sr_run, input_size=16)
    assert cfg.data.image_size == 64 and big.input_shape[1:3] == (16, 16)
    assert small.input_shape[1:3] == (8, 8)
    for a, b in zip(small.get_weights(), big.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the file computes the run's model at 16 px
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(runner(x), big(x).numpy(), atol=1e-4)
    for bad, why in (("4", "at least 8 px"), ("0", "at least 8 px"),
                     ("9", "cannot be built for 9 px inputs")):
        assert convert.main(["--float", "--run", trained_tiny_sr_run, "--input-size", bad,
                             "--out-dir", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    # without --out-dir the run's own model_float.tflite would be replaced by another shape
    assert convert.main(["--float", "--run", trained_tiny_sr_run, "--input-size", "16"]) == 2
    assert "give --out-dir" in capsys.readouterr().err
    # the shipped 256 px V-Net holds its face prior as a 256 px constant: not resizable
    v256 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "android_demo_assets", "vnet256", "keras")
    assert convert.main(["--int8", "--run", v256, "--input-size", "128",
                         "--out-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "at an input side of 128 px (is the model fully convolutional?)" in err
    assert "Traceback" not in err and not (tmp_path / "bad").exists()
