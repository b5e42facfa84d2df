"""The name → object tables (:class:`tfface.registry.Registry`) and the names the config
and the command lines accept: every accepted name is in its table."""

from __future__ import annotations

import pytest

import tfface  # noqa: F401

from tfface import config, losses
from tfface.data import occlusion as occ
from tfface.models import ARCHS, get_arch
from tfface.registry import Registry
from tfface.train.gan_losses import GAN_LOSSES
from tfface.train.regimes import REGIMES


def test_a_registry_adds_refuses_twice_and_lists_valid_names():
    table = Registry("colour", {"red": 1}, listing="known")

    @table.register("green")
    def green():
        return 2

    table.register("blue", 3)
    assert list(table) == ["red", "green", "blue"] and table.lookup("green") is green
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        table.register("red", 4)
    with pytest.raises(ValueError, match=r"^unknown colour 'pink'; known: red, green, blue$"):
        table.lookup("pink")
    with pytest.raises(ValueError, match="unknown colour"):  # not a name at all
        table.lookup(["red"])
    sorted_table = Registry("thing", {"b": 1, "a": 2}, sort=True, error=LookupError)
    with pytest.raises(LookupError, match="valid names: a, b"):
        sorted_table.lookup("c")


def test_every_name_the_config_accepts_is_in_its_table():
    assert config.GAN_LOSSES == tuple(GAN_LOSSES)
    assert config.PIXEL_LOSSES == tuple(losses.PIXEL_LOSSES)
    for name, family in ARCHS.items():
        assert get_arch(name) is family
        assert family.regime in REGIMES, name
        assert family.gan_loss is None or family.gan_loss in GAN_LOSSES, name
        for preset in family.presets:  # every shipped preset's mixture names registered ones
            cfg = config.resolve(name, preset)
            for key in ("occlusions", "eval_occlusions"):
                assert set(getattr(cfg.data, key) or {}) <= set(occ.OCCLUSIONS), (name, preset)
    assert set(config.DataConfig().occlusions) <= set(occ.OCCLUSIONS)
    assert set(occ.HELD_OUT) <= set(occ.OCCLUSIONS) and set(occ.FILLS) <= set(occ.OCCLUSIONS)


def test_every_name_a_command_line_offers_is_in_its_table():
    from pipelines import evaluate, train
    from tfface.identity.verify import EMBEDDERS

    def choices(parser, flag):
        return next(a.choices for a in parser._actions if flag in a.option_strings)

    assert list(choices(train.build_parser(), "--arch")) == sorted(ARCHS)
    assert set(choices(evaluate.build_parser(), "--identity")) <= set(EMBEDDERS)


def test_every_face_detector_a_command_line_names_is_in_its_table():
    from pipelines import prepare, restore
    from tfface.faces.detect import DEFAULT_DETECTOR, DETECTORS, DetectorError, make_detector

    def help_of(parser, flag):
        return next(a.help for a in parser._actions if flag in a.option_strings)

    assert isinstance(DETECTORS, Registry) and DEFAULT_DETECTOR in DETECTORS
    assert prepare.build_parser().get_default("face_detector") == DEFAULT_DETECTOR
    listed = help_of(restore.build_parser(), "--face-detector")
    assert [n for n in DETECTORS if n not in listed] == []  # restore's help names them all
    with pytest.raises(DetectorError, match=r"^unknown face detector 'mtccn'; use auto, "
                       r"blazeface, mtcnn, mtcnn\+blazeface, auto\+mtcnn or a BlazeFace"):
        make_detector("mtccn")


def test_an_unknown_name_is_one_clear_error():
    from tfface.identity.verify import IdentityError, load_embedder

    with pytest.raises(IdentityError, match="^unknown face embedder 'arcface'; choose from: dlib$"):
        load_embedder("arcface")
    with pytest.raises(ValueError, match="unknown architecture 'vnett'; valid names: pix2pix"):
        get_arch("vnett")
    with pytest.raises(ValueError, match="unknown adversarial loss 'wgan'; known: vanilla"):
        GAN_LOSSES.lookup("wgan")
    with pytest.raises(config.ConfigError, match="train.pixel_loss must be 'mse' or 'l1'"):
        config.resolve("vnet", "tiny", {"train": {"pixel_loss": "l2"}})
