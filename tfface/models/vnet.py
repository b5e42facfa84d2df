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
tensors carry meaningful names.
"""

from __future__ import annotations

from typing import Any

import keras_unet_collection.layer_utils as _kuc_layers
from keras_unet_collection._model_vnet_2d import vnet_2d_base
from keras_unet_collection.layer_utils import CONV_output

from tfface import keras
from tfface.models.discriminators import conv_discriminator, global_local_patch_critic
from tfface.models.family import Family
from tfface.models.layers import (ReLU6, inpaint_inputs, inpaint_keep_float, inpaint_model,
                                  small_init)

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
}

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
    inputs, x, base = inpaint_inputs(size, p, "vnet")
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
    if base is None:
        x = CONV_output(x, 3, kernel_size=1, activation=None, name="vnet_output")
    else:  # the residual over the classical fill, started near zero
        x = keras.layers.Conv2D(3, 1, kernel_initializer=small_init(),
                                name="vnet_output_conv")(x)
    return inpaint_model(inputs, x, base, p, "vnet")


def build_discriminator(cfg) -> keras.Model:
    """The discriminator of an adversarial V-Net run, by ``model.params.disc``:

    * ``patch``: a convolutional PatchGAN judging the whole face (the V-Net GAN);
    * ``global_local``: a global and a local critic (``[image, mask]`` → ``[B, 2]``), the
      local one judging the patches over the hole
      (:func:`~tfface.models.discriminators.global_local_patch_critic`): the realism
      fine-tune of a mask-input model, where everything outside the hole is the input.
    """
    p = FAMILY.params(cfg)
    if p["disc"] == "global_local":
        return global_local_patch_critic(cfg.data.image_size, p["disc_filters"])
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
