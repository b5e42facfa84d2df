"""The family specs, the adversarial-loss table and the regime options."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfface import keras, losses
from tfface.config import GAN_LOSSES, Config, ConfigError, resolve
from tfface.models import ARCHS, get_arch
from tfface.models.family import INPUT, Family
from tfface.train import gan_losses
from tfface.train.runner import build_trainer, make_content_fn
from tfface.train.unmask import UnmaskOptions
from tfface.train.wgan import WGANOptions


def test_every_family_is_a_complete_spec():
    for name, family in ARCHS.items():
        assert isinstance(family, Family) and family.name == name
        assert family.default_preset in family.presets and family.tiny_preset in family.presets
        assert set(family.params_spec) == set(family.default_params)
        cfg = resolve(name, family.tiny_preset)
        assert cfg.data.task == family.task
        assert family.params(cfg) == dict(family.default_params, **cfg.model.params)
    assert get_arch("pix2pix").disc_condition == INPUT == get_arch("unmask").disc_condition
    assert get_arch("wgan_gl").disc_condition == "mask"
    assert get_arch("vnet").disc_keys(("occluded", "mask"), resolve("vnet", "tiny")) == ()
    assert get_arch("srgan").upscale(resolve("srgan", "tiny")) == 4
    assert get_arch("vnet").upscale(resolve("vnet", "tiny")) == 1
    with pytest.raises(AttributeError):  # a spec, not a window onto its module
        get_arch("pix2pix").unet_depth


def test_the_table_is_what_the_config_accepts_and_matches_the_loss_terms():
    assert tuple(gan_losses.GAN_LOSSES) == GAN_LOSSES
    real = tf.constant([[0.5], [-1.0], [2.0]])
    fake = tf.constant([[-0.2], [0.3], [1.5]])
    t = gan_losses.GAN_LOSSES
    np.testing.assert_allclose(t["vanilla"].discriminator(real, fake, 0.1),
                               losses.discriminator_loss(real, fake, 0.1))
    np.testing.assert_allclose(t["vanilla"].generator(fake), losses.generator_adv_loss(fake))
    np.testing.assert_allclose(t["hinge"].discriminator(real, fake, 0.1),
                               losses.hinge_discriminator_loss(real, fake))
    np.testing.assert_allclose(t["wgan-gp"].discriminator(real, fake, 0.0),
                               float(np.mean(fake) - np.mean(real)), rtol=1e-6)
    np.testing.assert_allclose(t["lsgan"].discriminator(real, fake, 0.1),
                               np.mean((real.numpy() - 0.9) ** 2) + np.mean(fake.numpy() ** 2),
                               rtol=1e-6)
    np.testing.assert_allclose(t["lsgan"].generator(fake), np.mean((fake.numpy() - 1) ** 2),
                               rtol=1e-6)
    assert t["wgan-gp"].gradient_penalty and not t["hinge"].gradient_penalty
    assert len(gan_losses.heads(tf.zeros((2, 4, 4, 1)))) == 1
    assert [h.shape for h in gan_losses.heads(tf.zeros((2, 2)))] == [(2,), (2,)]
    with pytest.raises(ConfigError, match="train.gan_loss must be one of"):
        resolve("pix2pix", "tiny", {"train": {"gan_loss": "bce"}})


def _trainer(arch, **train):
    cfg = resolve(arch, "tiny", {"train": train} if train else None)
    keras.utils.set_random_seed(0)
    family = get_arch(arch)
    gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
    return build_trainer(cfg, gen, disc, content_fn=make_content_fn(cfg))


def test_family_defaults_are_the_losses_of_the_papers():
    names = {arch: _trainer(arch).gan_loss.name for arch in ARCHS}
    assert names == {"vnet": "vanilla", "pix2pix": "vanilla", "srgan": "vanilla",
                     "wgan_gl": "wgan-gp", "unmask": "hinge"}


def _batch(size, n=2):
    x = tf.random.stateless_uniform((n, size, size, 3), seed=(3, 4), minval=-1, maxval=1)
    mask = np.zeros((n, size, size, 1), np.float32)
    mask[:, size // 4: size // 2, size // 4: size // 2] = 1.0
    return {"clean": x, "occluded": x * (1 - mask), "mask": tf.constant(mask)}


@pytest.mark.parametrize("arch, gan_loss, logged", [
    ("pix2pix", "wgan-gp", {"gp", "d_real", "d_fake"}),  # a penalty in the GAN regime
    ("pix2pix", "lsgan", {"d_real", "d_fake"}),
    ("wgan_gl", "hinge", {"w_dist", "d_global", "d_local"}),  # critics-first, no penalty
])
def test_train_gan_loss_chooses_the_table_entry_in_any_regime(arch, gan_loss, logged):
    trainer = _trainer(arch, gan_loss=gan_loss)
    assert trainer.gan_loss.name == gan_loss
    d_before = [v.numpy().copy() for v in trainer.discriminator.trainable_variables]
    logs = trainer.train_step(_batch(32))
    assert logged <= set(logs) and ("gp" in logs) == (gan_loss == "wgan-gp")
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert not all(np.array_equal(v.numpy(), w)
                   for v, w in zip(trainer.discriminator.trainable_variables, d_before))


def test_old_flat_regime_keys_load_into_the_regime_options(tmp_path):
    cfg = resolve("wgan_gl", "tiny")
    raw = json.loads(cfg.to_json())
    del raw["train"]["gan_loss"]  # a config.json written before the key existed
    raw["train"]["n_critic"] = 3
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    old = Config.load(path)
    assert old.train.gan_loss is None
    assert WGANOptions.from_config(old) == WGANOptions(n_critic=3)
    assert UnmaskOptions.from_config(resolve("unmask", "tiny", {"train": {
        "coarse_weight": 0.5}})) == UnmaskOptions(coarse_weight=0.5, mask_weight=1.0)
    with pytest.raises(ValueError, match="n_critic must be >= 1"):
        WGANOptions(n_critic=0)
