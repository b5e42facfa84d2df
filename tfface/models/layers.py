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
