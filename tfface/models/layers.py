"""Serializable custom layers of the deployed graphs (no Lambda layers anywhere)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfface import keras

BN_MOMENTUM = 0.9
"""BatchNorm moving-average momentum of the wgan_gl and unmask networks (PyTorch's
default). Keras' 0.99 leaves the inference statistics far from the training ones in
short runs (unmask's U-Net: 99 % training vs 90 % eval pixel accuracy after 200 steps).
The older families keep Keras' default."""


@keras.utils.register_keras_serializable(package="tfface")
class ClipOutput(keras.layers.Layer):
    """Clip to [-1, 1] at inference; pass gradients straight through in training.

    Used as the output head instead of ``tanh`` where a model must run in full int8:
    the clip fuses into the preceding convolution as TFLite's ``RELU_N1_TO_1``, so the
    output tensor is quantized over exactly [-1, 1] (a step of 2/255). A ``tanh``
    head lets the pre-activation range grow to tens of units, and int8 then resolves
    the region where ``tanh`` is steep with steps of ~0.5 (measured: 21 dB int8
    fidelity for a tiny V-Net with tanh). The straight-through gradient in training
    keeps out-of-range pixels learning (a plain clip would give them zero gradient).
    """

    def call(self, x, training=None):
        clipped = tf.minimum(tf.maximum(x, -1.0), 1.0)
        if training:
            return x + tf.stop_gradient(clipped - x)
        return clipped

    def get_config(self):
        return super().get_config()


@keras.utils.register_keras_serializable(package="tfface")
class ReLU6(keras.layers.ReLU):
    """ReLU capped at 6 (MobileNet's activation), a serializable layer.

    A bounded activation keeps every feature map inside a range that int8 can
    resolve. With plain ReLU, trained V-Nets use two very different scales in the
    decoder (most images peak below 1, faces with large noise-filled holes reach
    270), and since an int8 concatenation shares one scale among its inputs, the
    skip features then lose their resolution (measured: 15 dB int8 fidelity).
    TFLite fuses it into the preceding convolution as RELU6.
    """

    def __init__(self, max_value: float = 6.0, **kwargs):
        super().__init__(max_value=max_value, **kwargs)


@keras.utils.register_keras_serializable(package="tfface")
class HoleFill(keras.layers.Layer):
    """Parameter-free classical fill of the hole: the starting point a network refines.

    Inputs ``[image, mask]`` (image in [-1, 1], mask 1 = hole); output the image with
    known pixels unchanged and hole pixels filled by normalized convolution (the mean
    of the known pixels in a 3, 7, 15 and 31 px window, the smallest window that
    sees any) followed by ``iterations`` steps of 3×3 diffusion inside the hole (a
    discrete heat equation with the known pixels as boundary). It is the same idea
    as OpenCV's Navier–Stokes/Telea inpainting, built from ops every TFLite runtime
    has in int8 (AVERAGE_POOL_2D, MUL, ADD, DIV, MAXIMUM). Measured on 80 held-out
    CelebA-C faces at 128 px: 29.69 dB / SSIM 0.9466 with 30 iterations, vs OpenCV NS
    (radius 3) 28.98 dB / 0.9449. A V-Net with ``prefill=True`` predicts a residual on
    top of it, so training starts from a classical inpainting instead of from zero.
    """

    WINDOWS = (3, 7, 15, 31)
    METHODS = ("windows", "pyramid")

    def __init__(self, iterations: int = 30, method: str = "windows", levels: int = 4,
                 **kwargs):
        super().__init__(**kwargs)
        if method not in self.METHODS:
            raise ValueError(f"HoleFill method must be one of {self.METHODS}, got '{method}'")
        self.iterations = int(iterations)
        self.method = method
        self.levels = int(levels)

    def call(self, inputs):
        image, mask = inputs
        if self.method == "pyramid":
            return self._pyramid(image, mask)
        known = 1.0 - mask
        kept = image * known
        fill = tf.zeros_like(image)
        have = tf.zeros_like(mask)
        for k in self.WINDOWS:
            den = tf.nn.avg_pool2d(known, k, 1, "SAME")
            num = tf.nn.avg_pool2d(kept, k, 1, "SAME")
            seen = tf.minimum(den * 1e4, 1.0)  # 1 where the window holds a known pixel
            new = (1.0 - have) * seen
            fill = fill + new * (num / tf.maximum(den, 1e-4))
            have = have + new
        x = kept + mask * fill
        for _ in range(self.iterations):
            x = kept + mask * tf.nn.avg_pool2d(x, 3, 1, "SAME")
        return x

    def _pyramid(self, image, mask):
        """Coarse-to-fine fill: 2×2 means of the known pixels down ``levels`` halvings,
        then from the coarsest level up, every block with a known pixel keeps its own
        mean and the others take the bilinear upsampling of the level below, smoothed
        by ``iterations`` steps of 3×3 diffusion per level (a multigrid solve of the
        same heat equation, so the fill reaches the middle of large holes in a few
        steps). A fraction of the full-resolution ``windows`` cost, all in small
        AVERAGE_POOL_2D/RESIZE_BILINEAR/MUL/ADD/DIV ops."""
        known = 1.0 - mask
        nums, dens = [image * known], [known]
        for _ in range(self.levels):
            nums.append(tf.nn.avg_pool2d(nums[-1], 2, 2, "VALID"))
            dens.append(tf.nn.avg_pool2d(dens[-1], 2, 2, "VALID"))
        x = None
        for lvl in range(self.levels, -1, -1):
            num, den = nums[lvl], dens[lvl]
            if lvl == 0:
                seen, value = known, num
            else:
                seen = tf.minimum(den * 1e4, 1.0)  # 1 where the block holds a known pixel
                value = num / tf.maximum(den, 1e-4)
            fixed = seen * value
            free = 1.0 - seen
            if x is None:
                x = fixed
            else:
                x = fixed + free * tf.image.resize(x, tf.shape(num)[1:3], "bilinear")
            for _ in range(self.iterations):
                x = fixed + free * tf.nn.avg_pool2d(x, 3, 1, "SAME")
        return x

    def get_config(self):
        return dict(super().get_config(), iterations=self.iterations, method=self.method,
                    levels=self.levels)


@keras.utils.register_keras_serializable(package="tfface")
class PriorHoleFill(HoleFill):
    """:class:`HoleFill` around a face prior: the hole gets the mean face of the training
    faces plus the classical fill of the *offset* image − prior (a gradient-domain
    blend: the prior's lips, nostrils, chin and eye shapes, in the colours and light of
    the face around the hole), where :class:`HoleFill` alone paints a smooth diffusion.

    Aligned faces share their layout, so the mean of thousands of them is a soft but
    structured face. On 80 faces-hq dev faces at 256 px the offset fill beats OpenCV
    Navier–Stokes by +0.9 dB (face masks) and +1.0 dB (sunglasses) and is sharper in the
    hole (0.44 vs 0.37, 0.52 vs 0.40; ``docs/realism.md``). The prior is a non-trainable
    weight ``[size, size, 3]`` in [-1, 1] (saved with the weights, a constant in the
    ``.tflite``); it starts at zero, where the layer is exactly :class:`HoleFill`, and
    training sets it to the mean of its training faces once
    (:func:`tfface.train.runner.init_face_prior`).
    """

    def __init__(self, size: int, iterations: int = 8, method: str = "pyramid",
                 levels: int = 4, **kwargs):
        super().__init__(iterations, method=method, levels=levels, **kwargs)
        self.size = int(size)
        self.prior = self.add_weight("prior", shape=(self.size, self.size, 3),
                                     initializer="zeros", trainable=False)

    def call(self, inputs):
        image, mask = inputs
        prior = tf.cast(self.prior, image.dtype)[None]
        return super().call([image - prior, mask]) + prior

    def get_config(self):
        return dict(super().get_config(), size=self.size)


PRIOR_LAYER = "hole_fill"
"""Name of the generator layer that holds a face prior (:class:`PriorHoleFill`)."""


MASK_INPUT_PARAMS: dict = {
    "mask_input": False,
    "prefill": False,
    "prefill_iterations": 8,
    "prefill_method": "pyramid",
    "prefill_levels": 4,
    "prefill_prior": False,
    "keep_known": False,
}
"""The inpainting generators' shared input options (defaults of pix2pix and wgan_gl; the
V-Net has its own defaults): ``mask_input`` adds the hole mask as a second input
(joined to the image as a fourth channel), ``prefill`` starts from the classical
:class:`HoleFill` of the hole and makes the network predict a residual on top of it,
``keep_known`` makes the model's own output the input image outside the hole
(:class:`KeepKnown`); ``prefill_prior`` makes the fill a :class:`PriorHoleFill` (the
mean training face blended into the hole)."""


def inpaint_inputs(size: int, p: dict, prefix: str):
    """The inputs of an inpainting generator under the options of :data:`MASK_INPUT_PARAMS`.

    Returns ``(inputs, x, base)``: the Keras inputs (``occluded`` and, with
    ``mask_input``, ``mask``), the tensor the network starts from (the image, or the
    fill joined with the mask) and the classical fill the output adds to (``None``
    without ``prefill``).
    """
    image = keras.Input((size, size, 3), name="occluded")
    inputs, x, base = [image], image, None
    if p["prefill"] and not p["mask_input"]:
        raise ValueError(f"{prefix} prefill=True needs mask_input=True (the fill needs the mask)")
    if p.get("keep_known") and not p["mask_input"]:
        raise ValueError(f"{prefix} keep_known=True needs mask_input=True (it keeps the pixels "
                         "outside the mask)")
    if p["mask_input"]:
        mask = keras.Input((size, size, 1), name="mask")
        inputs.append(mask)
        if p.get("prefill_prior") and not p["prefill"]:
            raise ValueError(f"{prefix} prefill_prior=True needs prefill=True (the prior is "
                             "blended in by the fill)")
        if p["prefill"]:
            if p.get("prefill_prior"):
                fill = PriorHoleFill(size, p["prefill_iterations"], method=p["prefill_method"],
                                     levels=p["prefill_levels"], name=PRIOR_LAYER)
            else:
                fill = HoleFill(p["prefill_iterations"], method=p["prefill_method"],
                                levels=p["prefill_levels"], name="hole_fill")
            base = fill([image, mask])
            x = base
        x = keras.layers.Concatenate(name=f"{prefix}_in_concat")([x, mask])
    return inputs, x, base


def small_init() -> keras.initializers.Initializer:
    """Initializer of a residual output layer: near zero (not zero: every weight gets a
    gradient from the first step), so training begins at the classical fill's quality
    instead of at noise."""
    return keras.initializers.RandomNormal(stddev=1e-3)


def inpaint_keep_float(cfg) -> list[str]:
    """Layers a full-int8 export of ``cfg``'s inpainting generator keeps in float: the
    parameter-free ``hole_fill`` of a ``prefill`` model (its diffusion steps lose too much
    in int8; see the shipped V-Net's figures in android_demo_assets/README.md) and the
    ``keep_known`` composite (in int8 it would round the kept pixels to the output's
    int8 steps). Every convolution stays int8. (Both default to off in every family.)"""
    p = cfg.model.params
    return (["hole_fill"] if p.get("prefill") else []) + (["restored"] if p.get("keep_known")
                                                          else [])


@keras.utils.register_keras_serializable(package="tfface")
class KeepKnown(keras.layers.Layer):
    """Inputs ``[image, mask, y]``: ``y`` inside the hole (mask 1), the input image
    outside it, as ``image + mask·(y − image)``, so a kept pixel is the input bit for bit
    (in float: a 0 mask adds exactly 0). An inpainting model's file then needs no
    compositing by the app, and its int8 noise stays inside the hole; the figures of
    the shipped V-Net in android_demo_assets/README.md show what this buys on small
    holes. Parameter-free: a model trained without it gets it at export unchanged."""

    def call(self, inputs):
        image, mask, y = inputs
        return image + mask * (y - image)


def inpaint_output(x, inputs, p: dict, name: str = "restored"):
    """The output of an inpainting generator: the head on ``x``, then with
    ``keep_known`` the :class:`KeepKnown` composite under the output's name."""
    if not p.get("keep_known"):
        return output_head(x, p["output_head"], name=name)
    y = output_head(x, p["output_head"], name=f"{name}_raw")
    return KeepKnown(name=name, dtype="float32")([inputs[0], inputs[1], y])


def inpaint_model(inputs, x, base, p: dict, name: str) -> keras.Model:
    """The generator from its inputs and last 3-channel tensor ``x``: added to the
    classical fill ``base`` when there is one (a residual), then the output
    (:func:`inpaint_output`)."""
    if base is not None:
        x = keras.layers.Add(name=f"{name}_residual")([base, x])
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], inpaint_output(x, inputs, p),
                       name=name)


def _keys_cubic(d: np.ndarray, a: float = -0.5) -> np.ndarray:
    d = np.abs(d)
    return np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                    np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))


def bicubic_phase_kernel(scale: int, channels: int = 3) -> np.ndarray:
    """Conv kernel ``[5, 5, C, C·scale²]`` whose output, after ``depth_to_space(scale)``,
    is bicubic upsampling (Keys a = -0.5, half-pixel centres, as ``tf.image.resize``).

    Output pixel ``o`` samples input coordinate ``(o + 0.5)/scale - 0.5``, so each of
    the ``scale`` phases is a fixed 4-tap filter inside the 5 input pixels around it.
    """
    taps = np.arange(-2, 3)
    w1 = np.zeros((scale, 5))
    for p in range(scale):
        x = (p + 0.5) / scale - 0.5  # position relative to the input pixel
        w1[p] = _keys_cubic(taps - x)
        w1[p] /= w1[p].sum()
    k = np.zeros((5, 5, channels, channels * scale * scale), np.float32)
    for py in range(scale):
        for px in range(scale):
            for c in range(channels):
                k[:, :, c, (py * scale + px) * channels + c] = np.outer(w1[py], w1[px])
    return k


@keras.utils.register_keras_serializable(package="tfface")
class BicubicUpsample(keras.layers.Layer):
    """Fixed bicubic upsampling from TFLite builtins (MIRROR_PAD, CONV_2D, DEPTH_TO_SPACE).

    TFLite has no bicubic resize op; this layer computes it as one convolution with a
    constant kernel (:func:`bicubic_phase_kernel`) and a pixel shuffle, on a 2-pixel
    symmetric border (``tf.image.resize`` renormalises at the border instead, so the
    outermost pixels differ slightly). No trainable weights.
    """

    def __init__(self, scale: int, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def build(self, input_shape):
        self._kernel = tf.constant(bicubic_phase_kernel(self.scale, int(input_shape[-1])))
        super().build(input_shape)

    def call(self, x):
        x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
        x = tf.nn.conv2d(x, tf.cast(self._kernel, x.dtype), 1, "VALID")
        return tf.nn.depth_to_space(x, self.scale)

    def get_config(self):
        return dict(super().get_config(), scale=self.scale)


@keras.utils.register_keras_serializable(package="tfface")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel upsampling (``depth_to_space``): ``[H, W, C·r²] → [H·r, W·r, C]``.

    The SRGAN/ESPCN upsampler as a registered layer (not a ``Lambda``), so models
    that use it save, load and convert; TFLite maps it to ``DEPTH_TO_SPACE``, which
    has int8 kernels.
    """

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.block_size)

    def compute_output_shape(self, input_shape):
        b, h, w, c = tf.TensorShape(input_shape).as_list()
        r = self.block_size
        return tf.TensorShape([b, None if h is None else h * r, None if w is None else w * r,
                               None if c is None else c // (r * r)])

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.utils.register_keras_serializable(package="tfface")
class NearestUpsample(keras.layers.UpSampling2D):
    """``UpSampling2D`` (nearest, channels-last) whose gradient XLA can compile.

    The forward pass is Keras' own (TFLite: ``RESIZE_NEAREST_NEIGHBOR``, int8 and
    XNNPACK); only the backward pass differs: TensorFlow differentiates the resize with
    ``ResizeNearestNeighborGrad``, which has no XLA kernel, so a model with UpSampling2D
    cannot train under ``--jit-compile``. The gradient of a nearest ×(fy, fx) upsampling
    is the sum of each fy×fx output block, written here as an average pool times fy·fx.
    """

    def __init__(self, size=(2, 2), **kwargs):
        kwargs.pop("interpolation", None)
        kwargs.pop("data_format", None)
        super().__init__(size=size, interpolation="nearest", data_format="channels_last",
                         **kwargs)

    def call(self, inputs):
        fy, fx = self.size
        forward = super().call

        @tf.custom_gradient
        def upsample(x):
            def grad(dy):
                return tf.nn.avg_pool2d(dy, (fy, fx), (fy, fx), "VALID") * float(fy * fx)

            return forward(x), grad

        return upsample(inputs)


def output_head(x, head: str, name: str = "restored"):
    """The parameter-free output head of a generator: ``tanh`` or ``clip`` (ClipOutput).

    The head always computes in float32 (a mixed-precision model still returns
    float32 images).
    """
    if head == "tanh":
        return keras.layers.Activation("tanh", name=name, dtype="float32")(x)
    if head == "clip":
        return ClipOutput(name=name, dtype="float32")(x)
    raise ValueError(f"output_head must be 'clip' or 'tanh', got '{head}'")


@keras.utils.register_keras_serializable(package="tfface")
class LeakyFormPReLU(keras.layers.PReLU):
    """PReLU (same weights, same function) in a form LiteRT's XNNPACK runs in int8.

    Computes ``x·(1 + a)/2 + |x|·(1 − a)/2`` with ``|x|`` as ``leaky_relu(x, −1)``, which
    equals ``x`` for ``x > 0`` and ``a·x`` otherwise. In full-int8 files XNNPACK does not
    take ``PRELU`` (nor standalone ``RELU``/``ABS``/``MAXIMUM``, whose int8 form needs the
    same input and output scale), so every PReLU of SRGAN ran in LiteRT's built-in
    kernels and split the graph into one delegate partition per PReLU; ``LEAKY_RELU``,
    ``MUL`` and ``ADD`` all run in XNNPACK int8 (see ``benchmarks/tflite_latency.py``).
    Used at export time through :func:`xnnpack_int8_form`; training keeps Keras' PReLU.
    """

    def call(self, inputs):
        a = tf.cast(self.alpha, inputs.dtype)
        return inputs * ((1.0 + a) * 0.5) + tf.nn.leaky_relu(inputs, alpha=-1.0) * ((1.0 - a) * 0.5)


def xnnpack_int8_form(model: keras.Model) -> keras.Model:
    """``model`` with each PReLU layer replaced by :class:`LeakyFormPReLU` (same weights).

    Returns ``model`` itself when it has no PReLU. Meant for full-int8 conversion; the
    float function is unchanged (up to float rounding).
    """
    if not any(type(layer) is keras.layers.PReLU for layer in model.layers):
        return model

    def clone(layer):
        cls = LeakyFormPReLU if type(layer) is keras.layers.PReLU else layer.__class__
        return cls.from_config(layer.get_config())

    new = keras.models.clone_model(model, clone_function=clone)
    new.set_weights(model.get_weights())
    return new


_ACTIVATIONS = {
    "relu": lambda name: keras.layers.ReLU(name=name),
    "relu6": lambda name: ReLU6(name=name),
    "elu": lambda name: keras.layers.ELU(name=name),
    "lrelu": lambda name: keras.layers.LeakyReLU(0.2, name=name),
}


def activation(kind: str, name: str, choices: tuple[str, ...] = tuple(_ACTIVATIONS),
               key: str = "activation") -> keras.layers.Layer:
    """A fresh activation layer ``name`` of ``kind`` (``relu``, ``relu6``, ``elu`` or
    ``lrelu`` = LeakyReLU(0.2)); ``choices``/``key`` restrict and name the family's option."""
    if kind not in choices:
        raise ValueError(f"{key} must be one of {', '.join(repr(c) for c in choices)}, "
                         f"got '{kind}'")
    return _ACTIVATIONS[kind](name)


@keras.utils.register_keras_serializable(package="tfface")
class Blur2D(keras.layers.Layer):
    """A fixed 3×3 binomial blur (``[1, 2, 1] ⊗ [1, 2, 1] / 16``) of every channel, stride 1,
    zero ``same`` padding; no weights. Before a stride-2 convolution it removes what that
    stride would alias (the anti-aliased downsampling of BlurPool, Zhang 2019): its
    response is zero at the period of 2 samples, so the strided layer's input gradient,
    which otherwise ripples at that period (locked to the pixel grid), is smoothed
    there too."""

    def call(self, x):
        channels = x.shape[-1]
        taps = tf.constant([1.0, 2.0, 1.0], dtype=x.dtype)
        kernel = (taps[:, None] * taps[None, :]) / 16.0
        kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
        return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")


@keras.utils.register_keras_serializable(package="tfface")
class LeakyMax(keras.layers.Layer):
    """``max(x, alpha * x)``: LeakyReLU's values (for ``0 < alpha < 1``) by another op.

    Grappler's remapper fuses Conv2D + BiasAdd + LeakyRelu into one kernel, and with the
    WGAN-GP penalty (the critic's gradient differentiated again) the fused graph then
    loses a node that the second-order gradient reads: TensorFlow prints ``E0000 ...
    remapper failed: INVALID_ARGUMENT`` on the first step and runs the unfused graph. The
    critic's result is right either way; the line looks like an error where nothing
    failed. ``Maximum`` is not fused, so nothing is printed. No weights.
    """

    def __init__(self, alpha: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, x):
        return tf.maximum(x, tf.cast(self.alpha, x.dtype) * x)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}
