"""Quantization-aware training, selective (mixed) quantization and pruning."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

import tfface  # noqa: F401
import tensorflow as tf

from tfface import keras
from tfface.cards import read_card
from tfface.export import qat, selective
from tfface.export.convert import (
    ConversionError, convert_model, fidelity_batch, representative_inputs,
)
from tfface.export.metadata import op_inventory
from tfface.export.quantize import QuantizationConfig, converter_for, representative_from
from tflite import convert


@pytest.fixture(scope="module")
def vnet_run(trained_tiny_run):
    from tfface.rundir import load_generator

    cfg, model = load_generator(trained_tiny_run)
    rep, targets = representative_inputs(cfg, 100, with_targets=True)
    return cfg, model, rep, targets, fidelity_batch(cfg)


def test_qat_int8_file_is_not_worse_than_post_training_int8(vnet_run, tiny_int8_file,
                                                            tmp_path):
    cfg, model, rep, _, batch = vnet_run
    # The post-training int8 file of the same run: `tflite.convert --int8 --samples 100`
    # calibrates on these 100 samples and scores on this eval batch (both drawn from the
    # run's config) -- the conversion this test made itself before, shared.
    ptq_card = json.load(open(os.path.splitext(tiny_int8_file)[0] + ".json"))
    assert ptq_card["quantization"]["mode"] == "int8"
    assert ptq_card["quantization"]["calibration_samples"] == len(rep) == 100
    assert ptq_card["quality"]["images"] == len(batch["clean"])
    q = convert_model(model, cfg, QuantizationConfig.for_qat(20), str(tmp_path),
                      representative=rep, check_batch=batch)
    assert os.path.basename(q.path) == "model_qat.tflite"
    ops = q.card["ops"]
    assert ops["float_ops"] == [] and ops["integer_ops"] == ops["compute_ops"] > 10
    assert ops["counts"]["TRANSPOSE_CONV"] == 2  # BN folded into the transposed convs
    # The file follows the fine-tuned quantization-aware Keras model closely.
    assert q.card["fidelity"]["psnr_db_vs_keras"] >= 30.0
    assert q.card["qat"]["steps"] == 20 and q.card["qat"]["loss"] == cfg.train.pixel_loss
    # Measured on the 16-face eval batch: PTQ 16.3 dB, QAT 17.7 dB vs ground truth
    # (this tiny model is far from converged, so part of the gain is plain extra
    # training; the assertion only claims "not worse", with 0.1 dB of slack).
    assert (q.card["quality"]["psnr_db_vs_ground_truth"]
            >= ptq_card["quality"]["psnr_db_vs_ground_truth"] - 0.1)
    assert read_card(q.path)["quantization"]["mode"] == "qat"


def test_qat_configs_cover_prelu_pixelshuffle_and_transposed_convs(tmp_path):
    from tfface.config import resolve
    from tfface.models import get_arch

    cfg = resolve("srgan", "tiny")
    model = get_arch("srgan").build_generator(cfg)
    # BN folding keeps the function (inference mode) and removes every BN layer.
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    folded = qat.fold_batch_norms(model)
    assert not [l for l in folded.layers if isinstance(l, keras.layers.BatchNormalization)]
    np.testing.assert_allclose(folded(x), model(x), atol=1e-4)
    q = qat.quantize_model(model)
    configs = {l.name: type(l.quantize_config).__name__ for l in q.layers
               if hasattr(l, "quantize_config")}
    assert configs["quant_head_prelu"] == "PReLUQuantizeConfig"
    assert configs["quant_up0_shuffle"] == "NoOpQuantizeConfig"
    assert configs["quant_restored"] == "OutputQuantizeConfig"
    # The quantized PReLU converts to an int8 PRELU kernel (no float fallback).
    from tfface.data.pipeline import make_dataset

    rep = [[b["lr"].numpy()] for b in make_dataset(cfg, "train", batch_size=1).take(10)]
    conv = converter_for(q, QuantizationConfig.for_int8(),
                         representative_from(rep))
    inv = op_inventory(conv.convert())
    assert inv["counts"]["PRELU"] == 5 and inv["float_ops"] == []

    p_cfg = resolve("pix2pix", "tiny")
    p_model = get_arch("pix2pix").build_generator(p_cfg)
    p_folded = qat.fold_batch_norms(p_model)
    deconv = p_folded.get_layer("up0_deconv")
    assert isinstance(deconv, keras.layers.Conv2DTranspose) and deconv.use_bias
    y = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(p_folded(y), p_model(y), atol=1e-4)


class Wave(keras.layers.Layer):
    """A layer whose op (ROUND) has no int8 kernel in TFLite."""

    def call(self, x):
        return tf.math.round(x)


def _model_with_wave(size: int = 64) -> keras.Model:
    from tfface.models.layers import ClipOutput

    inp = keras.Input((size, size, 3), name="occluded")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inp)
    x = Wave(name="wave")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv_b")(x)
    return keras.Model(inp, ClipOutput(name="restored")(x))


def test_unquantizable_layers_are_named_with_the_option_to_use(tmp_path, tiny_cfg):
    model = _model_with_wave()
    with pytest.raises(qat.UnsupportedLayerError, match=r"layer 'wave' \(Wave\).*"
                       r"--int8 --keep-float wave"):
        qat.annotate(model)
    rep = representative_inputs(tiny_cfg, 100)
    batch = fidelity_batch(tiny_cfg, 4)
    with pytest.raises(ConversionError,
                       match=r"ROUND \(layer wave\).*--keep-float wave"):
        convert_model(model, tiny_cfg, QuantizationConfig.for_int8(), str(tmp_path),
                      representative=rep, check_batch=batch)
    mixed = convert_model(
        model, tiny_cfg, QuantizationConfig.for_int8().with_selection(["wave"]),
        str(tmp_path), representative=rep, check_batch=batch)
    assert mixed.card["ops"]["float_ops"] == ["ROUND"]
    assert mixed.card["quantization"]["float_layers"] == ["wave"]
    assert mixed.card["ops"]["counts"]["CONV_2D"] == 2
    assert mixed.card["ops"]["integer_ops"] == 2


def test_keep_float_leaves_the_named_layers_float(vnet_run, tmp_path):
    cfg, model, rep, _, batch = vnet_run
    qcfg = QuantizationConfig.for_int8(io="int8").with_selection(["vnet_down_0_0", "restored"])
    res = convert_model(model, cfg, qcfg, str(tmp_path), representative=rep,
                        check_batch=batch)
    assert os.path.basename(res.path) == "model_int8_ioint8_mixed.tflite"
    ops = res.card["ops"]
    # The two named layers' convolutions (restored: the output conv + clip head) are
    # float; everything else stays int8.
    assert ops["float_ops"] == ["CONV_2D", "CONV_2D"]
    assert ops["integer_ops"] == ops["compute_ops"] - 2
    assert res.card["quantization"]["float_layers"] == ["vnet_down_0_0", "restored"]
    (inp,) = res.card["inputs"]
    assert inp["name"] == "serving_default_occluded:0" and inp["dtype"] == "int8"
    assert res.card["fidelity"]["psnr_db_vs_keras"] >= 36.0


def test_auto_mixed_keeps_the_fewest_worst_layers_float(vnet_run):
    cfg, model, rep, _, _ = vnet_run
    data = representative_from(rep[:20])
    conv = converter_for(model, QuantizationConfig.for_int8(), data)

    # A stand-in quality: 0.1 dB lost per int8 compute op. With 1 dB allowed the
    # search must keep exactly all but 10 ops float, no more.
    def quality(content: bytes) -> float:
        return 30.0 - 0.1 * op_inventory(content)["integer_ops"]

    res = selective.auto_mixed(model, conv, data, 1.0, quality, 30.0)
    # Unknown --keep-float names are rejected with the list of valid ones.
    _, mapping = selective.calibrated_layers(model, converter_for(
        model, QuantizationConfig.for_int8(), data), data)
    with pytest.raises(selective.SelectiveQuantizationError,
                       match=r"no layer named 'vnet_dwn' .*Valid names: vnet_input_conv_0,"
                             r".*vnet_down_0_0,.*vnet_output, restored$"):
        selective.check_layer_names(["vnet_down_0_0", "vnet_dwn"], mapping)
    inv = op_inventory(res.content)
    assert inv["integer_ops"] == 10
    assert len(inv["float_ops"]) == len(res.float_layers) == inv["compute_ops"] - 10
    errors = res.details["layer_error_rmse_per_step"]
    # The kept layers are the worst-ranked ones, in that order.
    assert res.float_layers == list(errors)[:len(res.float_layers)]
    assert all(v >= 0 for v in errors.values())
    with pytest.raises(selective.SelectiveQuantizationError, match="dB >= 0"):
        selective.auto_mixed(model, conv, data, -1.0, quality, 30.0)


def test_cli_keep_float_and_prune_report(trained_tiny_run, tiny_int8_file, tmp_path, capsys):
    out = str(tmp_path)
    assert convert.main(["--int8", "--keep-float", "vnet_up_1_concat", "--prune", "0.5",
                         "--prune-steps", "20", "--samples", "100", "--run", trained_tiny_run,
                         "--out-dir", out]) == 0
    printed = capsys.readouterr().out
    card = json.load(open(os.path.join(out, "model_int8_mixed_pruned50.json")))
    assert card["quantization"]["float_layers"] == ["vnet_up_1_concat"]
    assert "Layers kept in float (1): vnet_up_1_concat" in printed
    assert card["ops"]["float_ops"] == ["CONCATENATION"]
    pr = card["pruning"]
    assert pr["target_sparsity"] == 0.5 and 0.49 <= pr["achieved_sparsity"] <= 0.6
    assert "kernel sparsity" in printed and "gzip" in printed
    # Half the weights are zero: the compressed file is clearly smaller than the
    # compressed unpruned int8 file (the raw flatbuffer is not).
    unpruned_gz = len(gzip.compress(open(tiny_int8_file, "rb").read(), 9))
    assert pr["gzip_bytes"] < 0.85 * unpruned_gz


@pytest.mark.parametrize("argv, message", [
    (["--fp16", "--keep-float", "x"], "add --int8"),
    (["--int8", "--keep-float", "x", "--auto-mixed", "1"], "not both"),
    (["--int8", "--auto-mixed", "-1"], "dB >= 0"),
    (["--qat", "0"], "steps >= 1"),
    (["--int8", "--prune", "1.5"], "between 0 and 1"),
    (["--qat", "5", "--prune", "0.5"], "--prune with --qat is not supported"),
])
def test_cli_rejects_bad_quantization_options(argv, message, tmp_path, capsys):
    assert convert.main([*argv, "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_quantization_config_names_and_errors():
    assert QuantizationConfig.for_qat(10, io="uint8").file_stem == "model_qat_iouint8"
    assert QuantizationConfig.for_int8().with_selection(["a"]).file_stem == "model_int8_mixed"
    with pytest.raises(ValueError, match="--keep-float/--auto-mixed apply"):
        QuantizationConfig.for_qat(10).with_selection(["a"])
    with pytest.raises(ValueError, match="steps >= 1"):
        QuantizationConfig.for_qat(0)
