"""pipelines.grow: a trained SR network with more residual blocks that computes the same faces."""

from __future__ import annotations

import json

import numpy as np

from pipelines import grow
from tfface.config import resolve
from tfface.models import get_arch
from tfface.rundir import load_generator


def _trained(cfg, path, seed):
    """A network with random (non-zero) weights everywhere, saved to ``path``."""
    gen = get_arch(cfg.model.arch).build_generator(cfg)
    rng = np.random.default_rng(seed)
    names = [getattr(v, "path", v.name) for v in gen.weights]
    gen.set_weights([(np.abs(0.3 * rng.normal(size=w.shape)) + 1.0 if "variance" in n
                      else 0.3 * rng.normal(size=w.shape)).astype(w.dtype)
                     for w, n in zip(gen.get_weights(), names)])
    gen.save_weights(path)
    return gen


def test_the_grown_network_computes_the_same_faces_and_trains_from_there(tmp_path):
    cfg = resolve("srgan", "tiny")
    run = tmp_path / "run"
    run.mkdir()
    cfg.save(run / "config.json")
    src = _trained(cfg, str(run / "best.weights.h5"), 0)
    have = int(get_arch("srgan").params(cfg)["n_blocks"])
    out = tmp_path / "grown"
    assert grow.main([str(run), "--n-blocks", str(have + 2), "--out", str(out)]) == 0
    got_cfg, big = load_generator(str(out))  # what --init-weights, convert and evaluate read
    assert got_cfg.model.params["n_blocks"] == have + 2
    assert len(big.weights) > len(src.weights)
    x = np.random.default_rng(1).uniform(-1, 1, (3, *src.input_shape[1:])).astype(np.float32)
    a, b = np.asarray(src(x, training=False)), np.asarray(big(x, training=False))
    assert a.std() > 0.01  # the source is not a constant, so equal outputs mean something
    np.testing.assert_allclose(b, a, atol=1e-5)
    # the new blocks start as identities through their last BatchNorm, and stay trainable
    for i in (have, have + 1):
        gamma, beta = big.get_layer(f"res{i}_bn2").get_weights()[:2]
        assert not gamma.any() and not beta.any()
        assert big.get_layer(f"res{i}_conv1").get_weights()[0].std() > 0
    record = json.loads((out / "grow.json").read_text())
    assert record["n_blocks"] == [have, have + 2] and len(record["sha256"]) == 64


def test_bad_sources_and_outputs_are_refused_and_nothing_is_overwritten(tmp_path, capsys):
    cfg = resolve("srgan", "tiny")
    cfg.save(tmp_path / "config.json")
    _trained(cfg, str(tmp_path / "a.weights.h5"), 0)
    have = int(get_arch("srgan").params(cfg)["n_blocks"])
    conf = ["--config", str(tmp_path / "config.json")]
    src = str(tmp_path / "a.weights.h5")
    # not more blocks than the source has
    for n in (have, have - 1):
        assert grow.main([src, *conf, "--n-blocks", str(n), "--out", str(tmp_path / "x")]) == 2
        assert f"more than the source's {have}" in capsys.readouterr().err
    # a network without residual blocks
    other = resolve("vnet", "tiny")
    other.save(tmp_path / "vnet.json")
    assert grow.main([src, "--config", str(tmp_path / "vnet.json"), "--n-blocks", "9",
                      "--out", str(tmp_path / "x")]) == 2
    assert "only srgan networks" in capsys.readouterr().err
    # weights of another network than the config describes
    wide = resolve("srgan", "tiny")
    wide.model.params = dict(wide.model.params, filters=2 * int(wide.model.params.get("filters", 8)))
    _trained(wide, str(tmp_path / "wide.weights.h5"), 1)
    assert grow.main([str(tmp_path / "wide.weights.h5"), *conf, "--n-blocks", str(have + 1),
                      "--out", str(tmp_path / "x")]) == 2
    assert "does not hold weights of the network" in capsys.readouterr().err
    # a weights file carries no config: the tool says what to pass
    assert grow.main([src, "--n-blocks", str(have + 1), "--out", str(tmp_path / "x")]) == 2
    assert "pass --config" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # an existing folder with work in it is never overwritten
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "best.weights.h5").write_bytes(b"precious")
    assert grow.main([src, *conf, "--n-blocks", str(have + 1), "--out", str(keep)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (keep / "best.weights.h5").read_bytes() == b"precious"
