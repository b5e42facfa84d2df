"""Serializable custom layers of the deployed graphs (no Lambda layers anywhere)."""

from __future__ import annotations

import tensorflow as tf

from tfface import keras


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

    def __init__(self, iterations: int = 30, **kwargs):
        super().__init__(**kwargs)
        self.iterations = int(iterations)

    def call(self, inputs):
        image, mask = inputs
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

    def get_config(self):
        return dict(super().get_config(), iterations=self.iterations)


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
