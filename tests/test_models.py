"""Architecture registry and the V-Net family."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfface.config import ConfigError, resolve
from tfface.models import ARCHS, get_arch


def test_get_arch_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: .*vnet"):
        get_arch("nope")


def test_vnet_paper_preset_has_published_parameter_count():
    # filter_num [64,128,256,512,512], res 2/2, BN, strided conv / transposed conv,
    # 256x256x3; the tanh head adds no parameters.
    cfg = resolve("vnet", "paper")
    gen = get_arch("vnet").build_generator(cfg)
    assert gen.count_params() == 26_062_147
    assert gen.input_shape == (None, 256, 256, 3)
    assert gen.output_shape == (None, 256, 256, 3)
    assert gen.inputs[0].name.startswith("occluded")
    assert gen.output_names == ["restored"]


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_tiny_variant_builds_and_every_weight_gets_a_gradient(arch):
    family = get_arch(arch)
    cfg = resolve(arch, "tiny")
    gen = family.build_generator(cfg)
    disc = family.build_discriminator(cfg)
    s = cfg.data.image_size
    x = tf.random.stateless_uniform((2, s, s, 3), seed=(1, 2), minval=-1, maxval=1)
    with tf.GradientTape(persistent=True) as tape:
        y = gen(x, training=True)
        logits = disc(y, training=True)
        g_obj = tf.reduce_mean(tf.square(y)) + tf.reduce_mean(logits)
    assert y.shape == (2, s, s, 3)
    assert np.all(np.isfinite(y.numpy()))
    assert float(tf.reduce_max(tf.abs(y))) <= 1.0
    for model in (gen, disc):
        grads = tape.gradient(g_obj, model.trainable_variables)
        missing = [v.name for v, g in zip(model.trainable_variables, grads) if g is None]
        assert not missing, f"no gradient for {missing}"


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ConfigError, match="choose one of: paper, demo, tiny"):
        resolve("vnet", "huge")


def test_image_size_must_fit_the_depth():
    cfg = resolve("vnet", "tiny")
    cfg.model.params["filter_num"] = [8, 16, 32, 64]  # 4 levels: the size must divide by 8
    cfg.data.image_size = 76
    with pytest.raises(ValueError, match="divisible by 8"):
        get_arch("vnet").build_generator(cfg)
