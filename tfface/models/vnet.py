"""V-Net face restorer (Pleško et al.), built with keras-unet-collection.

The published face-reconstruction configuration: ``vnet_2d`` with filter_num
[64, 128, 256, 512, 512], res_num_ini=2, res_num_max=2, ReLU, batch norm, strided
convolutions instead of pooling and transposed convolutions instead of unpooling:
26,062,147 parameters at 256×256×3. Its input is the occluded image only; the
linear 1×1 output convolution is followed by a parameter-free head that maps the
output to [-1, 1] like the targets: ``clip`` by default (a clip at inference with a
straight-through gradient in training, see :class:`~tfface.models.layers.ClipOutput`;
it keeps full-int8 files faithful) or ``tanh``. Neither adds parameters.

The small presets use ReLU6 instead of ReLU for the same reason: with plain ReLU the
decoder of a trained V-Net mixes feature scales that one int8 range cannot hold (see
:class:`~tfface.models.layers.ReLU6`). Train a ``paper`` model that will ship as int8
with ``--set model.params.activation=ReLU6``.

The network is built from ``vnet_2d_base`` on our own named input, so the graph is
flat (no nested model), which QAT and TFLite conversion need, and the deployed
tensors carry meaningful names. ``model.params.upsample`` replaces the decoder's
transposed convolutions by a resize and a convolution (:data:`UPSAMPLE_MODES`; the
library's graph stays the default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import keras_unet_collection.layer_utils as _kuc_layers
from keras_unet_collection._model_vnet_2d import vnet_2d_base, vnet_left
from keras_unet_collection.layer_utils import CONV_output, CONV_stack, Res_CONV_stack

from tfface import keras
from tfface.models.discriminators import conv_discriminator, global_local_patch_critic
from tfface.models.family import Family
from tfface.models.layers import (NearestUpsample, ReLU6, inpaint_inputs, inpaint_keep_float,
                                  inpaint_model, small_init)

# keras-unet-collection resolves activation names with eval() in its layer_utils
# namespace; make the bounded activation available there by name.
_kuc_layers.ReLU6 = ReLU6

_DEFAULT_PARAMS: dict[str, Any] = {
    "filter_num": [64, 128, 256, 512, 512],
    "res_num_ini": 2,
    "res_num_max": 2,
    "activation": "ReLU",
    "batch_norm": True,
    "mask_input": False,
    "prefill": False,
    "prefill_iterations": 30,
    "prefill_method": "windows",
    "prefill_levels": 4,
    "prefill_prior": False,
    "keep_known": False,
    "output_head": "clip",
    "disc_filters": [64, 128, 256, 512],
    "disc": "patch",
    "disc_blur": False,
    "disc_sees_mask": False,
    "upsample": "transpose",
}

UPSAMPLE_MODES = ("transpose", "resize_conv", "nearest_conv")
"""How the decoder doubles the resolution (``model.params.upsample``):

* ``transpose`` (default; the published V-Net and every file shipped so far): a 3×3
  stride-2 transposed convolution. Its kernel is not divisible by its stride, so the
  four output phases see different taps (one, two, two and four of the nine): a
  checkerboard the network can paint at the stride of each level, which the realism
  fine-tunes amplified into grid-locked stripes (docs/realism.md).
* ``resize_conv``: bilinear ×2 upsampling, then a 3×3 convolution with the transposed
  convolution's input and output channels (``<level>_decode_resize`` and
  ``<level>_decode_conv``; batch norm and activation as before). Every output pixel sees
  the same taps, so a constant input gives a constant output and no phase is cheaper
  to paint than another.
* ``nearest_conv``: the same with nearest-neighbour upsampling.

A run of the transposed form starts a resize form with
:func:`resize_conv_from_transpose` (``--init-weights``).
"""

PRESETS: dict[str, dict[str, Any]] = {
    # The published configuration (Pleško et al.: 20 epochs, batch 32, 256 px).
    "paper": {
        "model": {"params": dict(_DEFAULT_PARAMS)},
        "data": {"image_size": 256},
        "train": {"batch_size": 32, "epochs": 20},
    },
    # A few minutes on a laptop CPU: the README's main command. The `mobile` recipe
    # at 64 px (the mask as a second input, a residual over the classical HoleFill,
    # L1 only, Adam 3e-4): training starts at the classical fill's quality, so the
    # model beats the damaged input and OpenCV inpainting within minutes. ReLU6
    # keeps the features in a range full-int8 files resolve.
    "demo": {
        "model": {
            "params": dict(
                _DEFAULT_PARAMS,
                filter_num=[16, 32, 64, 128],
                res_num_ini=1,
                activation="ReLU6",
                mask_input=True,
                prefill=True,
                disc_filters=[16, 32, 64],
            )
        },
        "data": {"image_size": 64, "eval_count": 64},
        "train": {"batch_size": 16, "epochs": 6, "steps_per_epoch": 150,
                  "save_every_steps": 150, "adv_weight": 0.0, "pixel_loss": "l1",
                  "g_lr": 3e-4},
    },
    # The recipe of the shipped android_demo_assets/vnet model: 128 px, mask as a
    # second input, residual over the classical HoleFill (its coarse-to-fine
    # ``pyramid`` form: as good as the 30-step ``windows`` fill and a fraction of its
    # latency), L1 only, ReLU6 (int8); widths 24..192, the largest whose int8 file
    # runs in under 10 ms at 2 threads on a 2-core x86 CPU (7.3 ms; 32..256: 11.4 ms).
    # ``keep_known``: the file returns the input outside the hole exactly (the shipped
    # file's irregular 0-10 % holes: +2.25 dB over OpenCV NS instead of +1.72).
    "mobile": {
        "model": {
            "params": dict(
                _DEFAULT_PARAMS,
                filter_num=[24, 48, 96, 192],
                res_num_ini=1,
                activation="ReLU6",
                mask_input=True,
                prefill=True,
                prefill_method="pyramid",
                prefill_iterations=8,
                prefill_levels=4,
                keep_known=True,
                disc_filters=[16, 32, 64],
            )
        },
        "data": {"image_size": 128, "eval_count": 100, "face_framing": "template",
                 "occlusions": {"celeba_c": 0.6, "boxes": 0.1, "strokes_medium": 0.1,
                                "facemask": 0.1, "sunglasses": 0.1}},
        "train": {"batch_size": 16, "epochs": 200, "steps_per_epoch": 200,
                  "save_every_steps": 200, "adv_weight": 0.0, "pixel_loss": "l1",
                  "g_lr": 3e-4},
    },
    # Seconds: tests and smoke runs.
    "tiny": {
        "model": {
            "params": dict(
                _DEFAULT_PARAMS,
                filter_num=[8, 16, 32],
                res_num_ini=1,
                activation="ReLU6",
                disc_filters=[8, 16],
            )
        },
        "data": {"image_size": 64, "eval_count": 8},
        "train": {"batch_size": 4, "epochs": 2, "steps_per_epoch": 5, "save_every_steps": 5},
    },
}


def downsampling_factor(cfg) -> int:
    """``data.image_size`` must be a multiple of this: the encoder halves the image
    ``len(filter_num) - 1`` times."""
    return 2 ** (len(FAMILY.params(cfg)["filter_num"]) - 1)


def build_generator(cfg) -> keras.Model:
    """The V-Net generator: occluded face in [-1, 1] → restored face in [-1, 1]."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    depth = len(p["filter_num"])
    if size % (2 ** (depth - 1)):
        raise ValueError(
            f"V-Net with {depth} levels needs image_size divisible by {2 ** (depth - 1)}, "
            f"got {size}"
        )
    if p["upsample"] not in UPSAMPLE_MODES:
        raise ValueError(f"model.params.upsample must be one of {', '.join(UPSAMPLE_MODES)}, "
                         f"got {p['upsample']!r}")
    inputs, x, base = inpaint_inputs(size, p, "vnet")
    if p["upsample"] == "transpose":  # the library's own graph, unchanged
        x = vnet_2d_base(
            x,
            p["filter_num"],
            res_num_ini=p["res_num_ini"],
            res_num_max=p["res_num_max"],
            activation=p["activation"],
            batch_norm=p["batch_norm"],
            pool=False,
            unpool=False,
            name="vnet",
        )
    else:
        x = _vnet_base_resize(x, p, name="vnet")
    if base is None:
        x = CONV_output(x, 3, kernel_size=1, activation=None, name="vnet_output")
    else:  # the residual over the classical fill, started near zero
        x = keras.layers.Conv2D(3, 1, kernel_initializer=small_init(),
                                name="vnet_output_conv")(x)
    return inpaint_model(inputs, x, base, p, "vnet")


def _vnet_base_resize(x, p: dict, name: str):
    """``vnet_2d_base(pool=False, unpool=False)`` with each decoder's transposed
    convolution replaced by a resize and a 3×3 convolution (``model.params.upsample``).
    The encoder, the residual stacks and every layer name but the decoder's upsampling
    are the library's, so every other layer of a transposed-form run loads by name."""
    filter_num = list(p["filter_num"])
    activation, batch_norm = p["activation"], p["batch_norm"]
    depth = len(filter_num)
    res_num = [min(p["res_num_ini"] + i, p["res_num_max"]) for i in range(depth)]
    x = CONV_stack(x, filter_num[0], kernel_size=3, stack_num=1, dilation_rate=1,
                   activation=activation, batch_norm=batch_norm, name=f"{name}_input_conv")
    x = Res_CONV_stack(x, x, filter_num[0], res_num=res_num[0], activation=activation,
                       batch_norm=batch_norm, name=f"{name}_down_0")
    skips = [x]
    for i, f in enumerate(filter_num[1:]):
        x = vnet_left(x, f, res_num=res_num[i + 1], activation=activation, pool=False,
                      batch_norm=batch_norm, name=f"{name}_down_{i + 1}")
        skips.append(x)
    skips, filter_num, res_num = skips[:-1][::-1], filter_num[:-1][::-1], res_num[:-1][::-1]
    for i, f in enumerate(filter_num):
        level = f"{name}_up_{i}"
        x = _resize_decode(x, f, p["upsample"], activation, batch_norm, f"{level}_decode")
        x_skip = x
        x = keras.layers.Concatenate(axis=-1, name=f"{level}_concat")([x, skips[i]])
        x = Res_CONV_stack(x, x_skip, f, res_num[i], activation=activation,
                           batch_norm=batch_norm, name=f"{level}_res_conv")
    return x


def _resize_decode(x, channels: int, mode: str, activation: str, batch_norm: bool, name: str):
    """Resize ×2 → Conv 3×3 (with a bias, as the transposed convolution it replaces has)
    → batch norm → activation (the library's ``decode_layer`` with the resize form)."""
    if mode == "nearest_conv":
        x = NearestUpsample((2, 2), name=f"{name}_resize")(x)
    else:
        x = keras.layers.UpSampling2D((2, 2), interpolation="bilinear",
                                      name=f"{name}_resize")(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(axis=3, name=f"{name}_bn")(x)
    if activation is not None:
        x = getattr(_kuc_layers, activation)(name=f"{name}_activation")(x)
    return x


_NEAREST_TAPS = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]], np.float64)
"""Nearest ×2 then a 3-tap convolution ``c``, in one dimension, as the input taps each output
phase reads: even outputs ``2i`` read ``z[i-1]`` (``c[0]``) and ``z[i]`` (``c[1] + c[2]``),
odd outputs ``2i+1`` read ``z[i]`` (``c[0] + c[1]``) and ``z[i+1]`` (``c[2]``)."""
_TRANSPOSE_TAPS = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0]], np.float64)
"""The same four entries for a 3-tap stride-2 transposed convolution ``w`` (``same``
padding): even outputs read ``z[i-1]`` (``w[2]``) and ``z[i]`` (``w[0]``), odd outputs
``z[i]`` (``w[1]``) and nothing of ``z[i+1]``."""


def resize_conv_from_transpose(kernel: np.ndarray, mode: str = "resize_conv") -> np.ndarray:
    """The 3×3 kernel of a resize + convolution decoder step (``model.params.upsample``)
    that stands in for a 3×3 stride-2 transposed convolution's (Keras layout
    ``[3, 3, out, in]``); returned in Conv2D layout ``[3, 3, in, out]``. The bias carries
    over unchanged.

    The transposed convolution's four output phases read the centre tap, the left and
    right taps, the top and bottom taps and the four corners: four different linear maps,
    which the resize forms cannot make (that difference is the checkerboard). So:

    * ``nearest_conv``: each output phase of nearest ×2 + 3×3 convolution reads a 2×2
      block of input pixels, as the transposed convolution's phases do; the kernel is the
      least-squares match of those per-phase taps (one dimension at a time, the two
      being separable), exact whenever the transposed kernel's phases agree (e.g. a
      linear interpolation).
    * ``resize_conv`` (bilinear): the response averaged over the four phases (the mean of
      the four phase sums) in the centre tap, zero elsewhere. The bilinear form's
      least-squares match is ill-posed (bilinear ×2 is nearest ×2 then a [1, 2, 1] blur,
      whose response is zero at the highest frequency), and the fitted kernels started
      the 256 px V-Net worse than this mean (docs/realism.md).
    """
    if mode not in UPSAMPLE_MODES[1:]:
        raise ValueError(f"resize_conv_from_transpose: mode must be one of "
                         f"{', '.join(UPSAMPLE_MODES[1:])}, got {mode!r}")
    kernel = np.asarray(kernel, np.float64)
    if kernel.ndim != 4 or kernel.shape[:2] != (3, 3):
        raise ValueError(f"resize_conv_from_transpose: expected a [3, 3, out, in] transposed "
                         f"convolution kernel, got shape {kernel.shape}")
    if mode == "nearest_conv":
        a = np.linalg.pinv(_NEAREST_TAPS) @ _TRANSPOSE_TAPS  # c = a @ w, per dimension
        out = np.einsum("ya,xb,aboi->yxio", a, a, kernel)
    else:
        out = np.zeros((3, 3, kernel.shape[3], kernel.shape[2]))
        out[1, 1] = kernel.sum(axis=(0, 1)).T / 4.0
    return out.astype(np.float32)


def fit_resize_convs(gen: keras.Model, source: keras.Model, batches, ridge: float = 1e-4
                     ) -> list[tuple[str, float, float]]:
    """Fit each resize-form decoder convolution of ``gen`` to the transposed convolution it
    replaces in ``source`` (the same V-Net in the transposed form, same weights elsewhere),
    on real inputs, level by level from the deepest: the kernel and bias that make
    ``conv(resize(x))``, with ``x`` what ``gen`` itself feeds that level, closest in the
    least-squares sense (ridge ``ridge`` × the mean feature power) to what ``source``'s
    transposed convolution gives there. Later levels thus also absorb the error of the
    earlier ones. ``batches``: an iterable of model inputs (lists of arrays).

    Returns ``(layer, error before, error after)`` per layer: the mean square of the
    difference, relative to the transposed convolution's mean square output."""
    import tensorflow as tf

    batches = list(batches)
    report = []
    for name in resize_decode_convs(gen):
        level = name[: -len("_conv")]
        target = keras.Model(source.inputs, source.get_layer(f"{level}_trans_conv").output)
        feed = keras.Model(gen.inputs, gen.get_layer(f"{level}_resize").output)
        layer = gen.get_layer(name)
        kernel, bias = layer.get_weights()
        cin, cout = kernel.shape[2], kernel.shape[3]
        xtx = np.zeros((9 * cin + 1, 9 * cin + 1))
        xty = np.zeros((9 * cin + 1, cout))
        yy, n = 0.0, 0
        for inputs in batches:
            ys = target(inputs, training=False).numpy()
            us = feed(inputs, training=False)
            for y, u in zip(ys, tf.unstack(us)):
                x = tf.image.extract_patches(u[None], [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1],
                                             "SAME").numpy().reshape(-1, 9 * cin)
                x = np.concatenate([x, np.ones((len(x), 1), np.float32)], 1)
                y = y.reshape(-1, cout)
                xtx += (x.T @ x).astype(np.float64)
                xty += (x.T @ y).astype(np.float64)
                yy += float(np.sum(y.astype(np.float64) ** 2))
                n += len(x)

        def error(w):  # mean square of x @ w - y, from the sums
            return (np.einsum("jo,jk,ko->", w, xtx, w) - 2 * np.sum(w * xty) + yy) / yy

        before = error(np.concatenate([kernel.reshape(9 * cin, cout), bias[None]], 0))
        reg = ridge * np.trace(xtx) / len(xtx)
        w = np.linalg.solve(xtx + reg * np.eye(len(xtx)), xty)
        after = error(w)
        if after < before:
            layer.set_weights([w[:-1].reshape(3, 3, cin, cout).astype(np.float32),
                               w[-1].astype(np.float32)])
        report.append((name, float(before), float(min(after, before))))
    return report


def resize_decode_convs(model: keras.Model) -> list[str]:
    """Names of the resize-form decoder convolutions of ``model`` (``<level>_decode_conv``)
    whose transposed-form twins are ``<level>_decode_trans_conv``."""
    return sorted(layer.name for layer in model.layers
                  if layer.name.startswith("vnet_up_") and layer.name.endswith("_decode_conv"))


def build_discriminator(cfg) -> keras.Model:
    """The discriminator of an adversarial V-Net run, by ``model.params.disc``:

    * ``patch``: a convolutional PatchGAN judging the whole face (the V-Net GAN);
    * ``global_local``: a global and a local critic (``[image, mask]`` → ``[B, 2]``), the
      local one judging the patches over the hole
      (:func:`~tfface.models.discriminators.global_local_patch_critic`): the realism
      fine-tune of a mask-input model, where everything outside the hole is the input.
      ``disc_blur=true`` blurs its features before each strided convolution after the first;
      ``disc_sees_mask=true`` gives it the hole as a fourth input channel (a conditional
      critic).
    """
    p = FAMILY.params(cfg)
    if p["disc"] == "global_local":
        return global_local_patch_critic(cfg.data.image_size, p["disc_filters"],
                                         blur=p["disc_blur"], sees_mask=p["disc_sees_mask"])
    for key, lacks in (("disc_blur", "has no blurred form"), ("disc_sees_mask", "reads no mask")):
        if p[key]:  # options of the global/local critic alone
            raise ValueError(f"model.params.{key}=true needs model.params.disc=global_local "
                             f"(the {p['disc']} discriminator {lacks})")
    return conv_discriminator(cfg.data.image_size, p["disc_filters"], name="discriminator")


def disc_condition(cfg) -> str | None:
    """What the discriminator reads next to the image: the hole for ``global_local``."""
    return "mask" if FAMILY.params(cfg)["disc"] == "global_local" else None


FAMILY = Family(
    name="vnet", task="inpaint", presets=PRESETS, default_preset="paper",
    default_params=_DEFAULT_PARAMS, build_generator=build_generator,
    build_discriminator=build_discriminator, disc_condition=disc_condition,
    downsampling_factor=downsampling_factor,
    int8_keep_float=inpaint_keep_float,
)
