"""Quantization-aware fine-tuning and pruning of a trained generator (tfmot).

Both start from the run's trained generator, fine-tune it for a few steps on the run's
own training stream (``make_dataset(cfg, "train")``) with the run's pixel loss through
the project's :class:`~tfface.train.trainer.RestorationTrainer`, and hand back a plain
Keras model that the TFLite converter takes like any other.

Quantization-aware training (:func:`quantize_aware_finetune`):

1. Every convolution followed by a batch norm is folded into one convolution with a
   bias (:func:`fold_batch_norms`). tfmot only folds ``Conv2D → BN``; a
   ``Conv2DTranspose → BN`` (the V-Net and pix2pix decoders) is no QAT pattern and
   would train with a fake-quantized tensor between the two that the converter then
   cannot fold away. Folded, the decoder is ``Conv2DTranspose(+bias) → ReLU``, which
   is exactly what the converter fuses into one int8 ``TRANSPOSE_CONV``.
2. The project's ``ReLU6`` layer becomes Keras' ``ReLU(max_value=6)`` (the same
   function), so tfmot's ``Conv2D → ReLU`` fusion pattern recognises it.
3. Each layer is annotated: layers tfmot knows get its default 8-bit config; the
   project's custom layers and PReLU get a :class:`QuantizeConfig` of their own
   (:data:`CUSTOM_CONFIGS`); a layer with neither is an error that names it.
"""

from __future__ import annotations

import copy
import gzip
from typing import Any, Sequence

import numpy as np

import tfface  # noqa: F401  (tf_keras before TensorFlow)
import tensorflow_model_optimization as tfmot

from tfface import keras
from tfface.models.layers import ClipOutput, HoleFill, PixelShuffle, ReLU6

_quantizers = tfmot.quantization.keras.quantizers
QuantizeConfig = tfmot.quantization.keras.QuantizeConfig

DEFAULT_QAT_LR = 1e-4
DEFAULT_PRUNE_LR = 1e-4


class UnsupportedLayerError(ValueError):
    """A layer that quantization-aware training cannot handle (the message names it)."""


# -- QuantizeConfigs for layers tfmot does not know -----------------------------------

def _activation_quantizer():
    # What tfmot's default 8-bit scheme uses for activations: asymmetric, per tensor,
    # range from a moving average of the batch min/max (the converter's int8 tensors).
    return _quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                              narrow_range=False)


class OutputQuantizeConfig(QuantizeConfig):
    """No weights; the layer's output is fake-quantized to int8.

    For parameter-free layers whose output TFLite stores as a new int8 tensor with its
    own scale: ``ClipOutput`` (the output head; its range learns [-1, 1]), ``ReLU6``
    where it is not fused, ``HoleFill`` (its avg-pool/mul/div internals are calibrated
    by the converter from the representative data; QAT sees their result), and a
    batch norm that could not be folded.
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_activation_quantizer()]

    def get_config(self):
        return {}


class NoOpQuantizeConfig(OutputQuantizeConfig):
    """Nothing is quantized: for layers that only move values around.

    ``PixelShuffle`` (``DEPTH_TO_SPACE``) is a permutation; TFLite's int8 kernel
    requires the same scale on input and output, so the input's range is reused.
    """

    def get_output_quantizers(self, layer):
        return []


class PReLUQuantizeConfig(OutputQuantizeConfig):
    """PReLU (SRGAN): its per-channel slope ``alpha`` and its output in int8.

    TFLite's int8 ``PRELU`` takes ``alpha`` as an int8 tensor with one scale, so the
    slope is fake-quantized per tensor, symmetric, as the converter will store it; the
    output gets the activation quantizer.
    """

    def __init__(self):
        self.alpha_quantizer = _quantizers.LastValueQuantizer(
            num_bits=8, per_axis=False, symmetric=True, narrow_range=True)

    def get_weights_and_quantizers(self, layer):
        return [(layer.alpha, self.alpha_quantizer)]

    def set_quantize_weights(self, layer, quantize_weights):
        (layer.alpha,) = quantize_weights


CUSTOM_CONFIGS: dict[type, type[QuantizeConfig]] = {
    keras.layers.PReLU: PReLUQuantizeConfig,
    ClipOutput: OutputQuantizeConfig,
    ReLU6: OutputQuantizeConfig,
    HoleFill: OutputQuantizeConfig,
    PixelShuffle: NoOpQuantizeConfig,
    keras.layers.BatchNormalization: OutputQuantizeConfig,
}


def quantize_scope():
    """tfmot's deserialization scope plus the project's configs (for quantize_apply)."""
    objs = {c.__name__: c for c in (OutputQuantizeConfig, NoOpQuantizeConfig,
                                    PReLUQuantizeConfig)}
    objs.update({"ClipOutput": ClipOutput, "HoleFill": HoleFill,
                 "PixelShuffle": PixelShuffle, "ReLU6": ReLU6})
    return tfmot.quantization.keras.quantize_scope(objs)


# -- graph rewrites -------------------------------------------------------------------

_CONVS = ("Conv2D", "Conv2DTranspose")


def _consumers(layers_cfg: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for lc in layers_cfg:
        for node in lc["inbound_nodes"]:
            for inbound in node:
                out.setdefault(inbound[0], []).append(lc["name"])
    return out


def _rename_inputs(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, list):
        if len(obj) >= 3 and obj[0] == old and isinstance(obj[1], int):
            return [new, *obj[1:]]
        return [_rename_inputs(x, old, new) for x in obj]
    return obj


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with every ``Conv → BatchNormalization`` pair merged.

    A convolution (``Conv2D`` or ``Conv2DTranspose``, linear activation) whose only
    consumer is a batch norm becomes one convolution with a bias; its output equals
    the pair's at inference. Other layers and weights are copied unchanged.
    """
    config = copy.deepcopy(model.get_config())
    layers_cfg = config["layers"]
    by_name = {lc["name"]: lc for lc in layers_cfg}
    consumers = _consumers(layers_cfg)
    folds: dict[str, str] = {}  # conv name -> bn name
    for lc in layers_cfg:
        if lc["class_name"] != "BatchNormalization" or len(lc["inbound_nodes"]) != 1:
            continue
        (node,) = lc["inbound_nodes"]
        if len(node) != 1:
            continue
        src = by_name[node[0][0]]
        if (src["class_name"] in _CONVS and consumers.get(src["name"]) == [lc["name"]]
                and src["config"].get("activation") in (None, "linear")):
            folds[src["name"]] = lc["name"]
    for conv, bn in folds.items():
        by_name[conv]["config"]["use_bias"] = True
        layers_cfg.remove(by_name[bn])
        for lc in layers_cfg:
            lc["inbound_nodes"] = _rename_inputs(lc["inbound_nodes"], bn, conv)
        config["output_layers"] = _rename_inputs(config["output_layers"], bn, conv)
    for lc in layers_cfg:
        if lc["class_name"] in ("tfface>ReLU6", "ReLU6"):  # same function, known to tfmot
            lc["class_name"] = "ReLU"
            lc["config"] = {k: v for k, v in lc["config"].items()
                            if k in ("name", "trainable", "dtype", "max_value",
                                     "negative_slope", "threshold")}
    folded = keras.Model.from_config(config)
    for layer in folded.layers:
        old = model.get_layer(layer.name)
        if layer.name in folds:
            bn = model.get_layer(folds[layer.name])
            _set_folded(layer, old, bn)
        elif old.weights:
            layer.set_weights(old.get_weights())
    return folded


def _set_folded(conv: keras.layers.Layer, old_conv: keras.layers.Layer,
                bn: keras.layers.BatchNormalization) -> None:
    kernel = old_conv.kernel.numpy()
    bias = old_conv.bias.numpy() if old_conv.use_bias else 0.0
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    # Output channels are the kernel's last axis for Conv2D, the third for the transpose.
    out_axis = 2 if isinstance(conv, keras.layers.Conv2DTranspose) else 3
    shape = [1, 1, 1, 1]
    shape[out_axis] = -1
    conv.set_weights([kernel * scale.reshape(shape),
                      (bias - bn.moving_mean.numpy()) * scale + beta])


def annotate(model: keras.Model) -> keras.Model:
    """``model`` with every layer annotated for 8-bit quantization (see module doc).

    Raises:
        UnsupportedLayerError: naming the first layer that has no quantization config.
    """
    registry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    annotate_layer = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, keras.layers.InputLayer):
            return fresh
        if layer.__class__ in CUSTOM_CONFIGS:
            return annotate_layer(fresh, CUSTOM_CONFIGS[layer.__class__]())
        if registry.supports(layer):
            return annotate_layer(fresh)
        raise UnsupportedLayerError(
            f"layer '{layer.name}' ({layer.__class__.__name__}) has no quantization-aware "
            f"training config; convert it with --int8 --keep-float {layer.name} instead of "
            "--qat, or add a QuantizeConfig for it to tfface/export/qat.py CUSTOM_CONFIGS")

    annotated = keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    return annotated


def quantize_model(model: keras.Model) -> keras.Model:
    """The trained float ``model`` as a tfmot quantization-aware model (not yet tuned)."""
    folded = fold_batch_norms(model)
    with quantize_scope():
        return tfmot.quantization.keras.quantize_apply(annotate(folded))


# -- fine-tuning ------------------------------------------------------------------------

def _finetune_config(cfg, lr: float):
    """``cfg`` for a supervised pixel-loss fine-tune: no GAN, no content net, constant lr."""
    ft = copy.deepcopy(cfg)
    t = ft.train
    t.adv_weight, t.content_weight, t.pretrain_steps, t.ema_decay = 0.0, 0.0, 0, 0.0
    t.g_lr, t.g_lr_schedule = float(lr), "constant"
    t.mixed_precision, t.jit_compile, t.strategy = False, False, "default"
    if t.pixel_weight <= 0:  # SRGAN presets train on the content loss only
        t.pixel_weight = 1.0
    return ft


def finetune(model: keras.Model, cfg, steps: int, lr: float,
             callbacks: Sequence[keras.callbacks.Callback] = ()) -> list[float]:
    """Train ``model`` for ``steps`` steps on the run's training stream with its pixel
    loss; returns the running mean of the pixel loss after each step (Keras' epoch
    logs), so the last value is the mean over the fine-tune."""
    from tfface.data.pipeline import make_dataset
    from tfface.train.runner import build_trainer

    if steps < 1:
        raise ValueError(f"fine-tuning needs at least 1 step, got {steps}")
    ft = _finetune_config(cfg, lr)
    trainer = build_trainer(ft, model, None, total_steps=steps)
    trainer.log_every = steps + 1  # no diagnostics needed here
    losses: list[float] = []

    class _Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["pixel"]))

    trainer.fit(make_dataset(ft, "train"), epochs=1, steps_per_epoch=int(steps),
                callbacks=[*callbacks, _Record()], verbose=0)
    return losses


def quantize_aware_finetune(model: keras.Model, cfg, steps: int,
                            lr: float = DEFAULT_QAT_LR) -> tuple[keras.Model, dict[str, Any]]:
    """Quantization-aware fine-tuning of a trained generator for ``steps`` steps.

    Returns the tuned quantization-aware model (convert it with the int8 settings: its
    fake-quant ranges become the file's scales) and a report for the model card.
    """
    qat = quantize_model(model)
    losses = finetune(qat, cfg, steps, lr)
    report = {"steps": int(steps), "learning_rate": float(lr),
              "loss": cfg.train.pixel_loss,
              "loss_first_step": round(losses[0], 6), "loss_mean": round(losses[-1], 6),
              "data": "the run's training stream (make_dataset train split)",
              "batch_norm": "folded into the preceding convolutions before fine-tuning"}
    return qat, report


# -- pruning ----------------------------------------------------------------------------

_PRUNABLE = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)


def _prunable(layer) -> bool:
    return isinstance(layer, _PRUNABLE) and not isinstance(layer, keras.layers.DepthwiseConv2D)


def kernel_sparsity(model: keras.Model) -> float:
    """Fraction of exact zeros over the kernels of all convolutions and dense layers."""
    zeros = total = 0
    for layer in model.layers:
        if _prunable(layer):
            k = layer.kernel.numpy()
            zeros += int(np.sum(k == 0))
            total += k.size
    return zeros / max(1, total)


def gzip_size(content: bytes) -> int:
    """Bytes of ``content`` gzip-compressed (level 9): what pruning saves in an app
    download; the flatbuffer itself stores zeros like any other weight."""
    return len(gzip.compress(bytes(content), compresslevel=9))


def prune(model: keras.Model, cfg, sparsity: float, steps: int,
          lr: float = DEFAULT_PRUNE_LR) -> tuple[keras.Model, dict[str, Any]]:
    """Magnitude pruning of every conv/dense kernel to ``sparsity`` with fine-tuning.

    The pruning masks are recomputed on every step of a ``steps``-step fine-tune at a
    constant target (tfmot ``ConstantSparsity``), then the wrappers are stripped so
    the result is a plain Keras model of the original architecture.
    """
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"--prune takes a sparsity between 0 and 1 (e.g. 0.5), got {sparsity}")
    sp = tfmot.sparsity.keras
    schedule = sp.ConstantSparsity(float(sparsity), begin_step=0, frequency=1)

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        return sp.prune_low_magnitude(fresh, pruning_schedule=schedule) if _prunable(layer) else fresh

    wrapped = keras.models.clone_model(model, clone_function=clone)
    for layer in wrapped.layers:
        src = model.get_layer(layer.layer.name if hasattr(layer, "layer") else layer.name)
        if src.weights:
            target = layer.layer if hasattr(layer, "layer") else layer
            target.set_weights(src.get_weights())
    losses = finetune(wrapped, cfg, steps, lr, callbacks=[sp.UpdatePruningStep()])
    stripped = sp.strip_pruning(wrapped)
    report = {"target_sparsity": float(sparsity),
              "achieved_sparsity": round(kernel_sparsity(stripped), 4),
              "steps": int(steps), "learning_rate": float(lr),
              "loss_first_step": round(losses[0], 6), "loss_mean": round(losses[-1], 6),
              "scope": "kernels of every Conv2D, Conv2DTranspose and Dense layer"}
    return stripped, report
