"""pipelines.soup: the weighted average of fine-tunes of one network, as a run directory."""

from __future__ import annotations

import json
import os

import numpy as np

from pipelines import soup
from tfface.config import resolve
from tfface.models import get_arch
from tfface.rundir import load_generator


def _weights(cfg, path, seed):
    gen = get_arch(cfg.model.arch).build_generator(cfg)
    rng = np.random.default_rng(seed)
    gen.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in gen.get_weights()])
    gen.save_weights(path)
    return gen.get_weights()


def test_the_soup_is_the_weighted_mean_and_a_run_directory(tmp_path):
    cfg = resolve("srgan", "tiny")
    run = tmp_path / "run"
    run.mkdir()
    cfg.save(run / "config.json")
    a = _weights(cfg, str(run / "best.weights.h5"), 0)
    b = _weights(cfg, str(tmp_path / "b.weights.h5"), 1)
    out = tmp_path / "soup"
    assert soup.main([str(run), str(tmp_path / "b.weights.h5"), "--coef", "0.25", "0.75",
                      "--out", str(out)]) == 0
    got_cfg, gen = load_generator(str(out))  # what tflite.convert and evaluate read
    assert got_cfg.to_dict() == cfg.to_dict()
    for wa, wb, w in zip(a, b, gen.get_weights()):
        np.testing.assert_allclose(w, 0.25 * wa + 0.75 * wb, rtol=1e-5, atol=1e-6)
    record = json.loads((out / "soup.json").read_text())
    assert [s["coef"] for s in record["sources"]] == [0.25, 0.75]
    assert all(len(s["sha256"]) == 64 for s in record["sources"])


def test_bad_sources_and_outputs_are_refused_and_nothing_is_overwritten(tmp_path, capsys):
    cfg = resolve("srgan", "tiny")
    cfg.save(tmp_path / "config.json")
    _weights(cfg, str(tmp_path / "a.weights.h5"), 0)
    _weights(cfg, str(tmp_path / "b.weights.h5"), 1)
    other = resolve("vnet", "tiny")
    _weights(other, str(tmp_path / "vnet.weights.h5"), 2)
    pair = [str(tmp_path / "a.weights.h5"), str(tmp_path / "b.weights.h5")]
    conf = ["--config", str(tmp_path / "config.json")]

    # another network's weights: refused, no output folder made
    assert soup.main([pair[0], str(tmp_path / "vnet.weights.h5"), *conf,
                      "--out", str(tmp_path / "x")]) == 2
    assert "does not hold weights of the network" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # coefficients that do not sum to 1, or do not match the sources
    assert soup.main([*pair, *conf, "--coef", "0.5", "0.6", "--out", str(tmp_path / "x")]) == 2
    assert "sum to 1" in capsys.readouterr().err
    assert soup.main([*pair, *conf, "--coef", "nan", "1", "--out", str(tmp_path / "x")]) == 2
    assert "sum to 1" in capsys.readouterr().err
    assert soup.main([*pair, *conf, "--coef", "1.5", "-0.5", "--out", str(tmp_path / "x")]) == 2
    assert ">= 0" in capsys.readouterr().err
    assert soup.main([*pair, *conf, "--coef", "1", "--out", str(tmp_path / "x")]) == 2
    assert "gives 1 weights for 2 sources" in capsys.readouterr().err
    # one source is not a soup
    assert soup.main([pair[0], *conf, "--out", str(tmp_path / "x")]) == 2
    assert "two or more sources" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # weights files carry no config: without --config the tool says what to pass
    assert soup.main([*pair, "--out", str(tmp_path / "x")]) == 2
    assert "pass --config" in capsys.readouterr().err
    # an existing folder with work in it is never overwritten
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "best.weights.h5").write_bytes(b"precious")
    assert soup.main([*pair, *conf, "--out", str(keep)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (keep / "best.weights.h5").read_bytes() == b"precious"
    assert sorted(os.listdir(keep)) == ["best.weights.h5"]
