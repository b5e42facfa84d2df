"""Grow a trained SR network by residual blocks that start as identities, into a run directory.

A trained SRResNet (``--arch srgan``) gets more capacity without losing what it learned: its
layers are loaded by name into the same network with more residual blocks, and each new
block's last BatchNorm has its scale and shift set to zero, so the block adds nothing and the
grown network computes exactly the faces the trained one did (checked on random input before
anything is written). Training it on (``pipelines.train --set model.params.n_blocks=N
--init-weights OUT/best.weights.h5``) then starts from the trained network's quality instead
of from scratch; the shipped x4 file's stages 7 and 8 were made this way
(android_demo_assets/README.md)::

    python -m pipelines.grow android_demo_assets/srgan/keras --n-blocks 24 --out runs/sr24-init

The source is a run directory (its best weights, else its last) or a ``.weights.h5`` file
with ``--config``. The output folder gets ``config.json`` (the source's, with the new
``n_blocks``), ``best.weights.h5`` and ``grow.json`` (the source's path and SHA-256); an
existing, non-empty folder is refused, never overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tfface  # noqa: F401
from tfface.cli import prog_name

GROW_FILE = "grow.json"
GROWABLE = ("srgan",)
"""Families whose generator is a stack of ``n_blocks`` residual blocks named ``res<i>_*``."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.grow", "tfface-grow"),
        description="Add residual blocks that start as identities to a trained SR network "
        "(same faces out, more capacity to train), as a new run directory that "
        "pipelines.train --init-weights, tflite.convert and pipelines.evaluate read.",
        epilog="Writes OUT/config.json (the source's config with the new n_blocks), "
        "OUT/best.weights.h5 and OUT/grow.json (the source's path and SHA-256). Then train "
        "it on: python -m pipelines.train --arch srgan --set model.params.n_blocks=N "
        "--init-weights OUT/best.weights.h5 ...")
    p.add_argument("source", help="run directory (best weights, else last) or .weights.h5 "
                   "file of a trained srgan network")
    p.add_argument("--config", help="run directory or config.json that describes the source "
                   "network (default: the source's own run directory)")
    p.add_argument("--n-blocks", type=int, required=True,
                   help="residual blocks of the grown network (more than the source's)")
    p.add_argument("--out", required=True, help="new run directory to write (refused if it "
                   "exists and is not empty)")
    return p


def grow(source: str, config_path: str, n_blocks: int, out: str) -> dict:
    """Write ``source``'s network grown to ``n_blocks`` residual blocks as the run directory
    ``out``; returns what ``grow.json`` records.

    Raises:
        ValueError: a family that cannot grow, ``n_blocks`` not above the source's, a source
            that is not weights of the configured network, or an ``out`` that exists and is
            not empty.
        tfface.config.ConfigError: ``config_path`` is not a usable configuration.
    """
    from pipelines.soup import load_source, write_run_dir
    from tfface.cards import file_sha256
    from tfface.config import Config, validate
    from tfface.models import get_arch

    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(f"{out} exists and is not an empty folder; choose another --out")
    cfg = Config.load(config_path)  # validated: a config from elsewhere runs no code
    if cfg.model.arch not in GROWABLE:
        raise ValueError(f"{config_path} describes a {cfg.model.arch} network; only "
                         f"{', '.join(GROWABLE)} networks (residual blocks) can grow")
    arch = get_arch(cfg.model.arch)
    have = int(arch.params(cfg)["n_blocks"])
    if n_blocks <= have:  # the upper bound is model.params' own (validate below)
        raise ValueError(f"--n-blocks must be more than the source's {have}, got {n_blocks}")
    small = arch.build_generator(cfg)
    path = load_source(small, source, cfg, config_path)
    big_cfg = Config.from_dict(cfg.to_dict())
    big_cfg.model.params = dict(big_cfg.model.params, n_blocks=n_blocks)
    big_cfg.train.init_weights = None
    validate(big_cfg)
    big = arch.build_generator(big_cfg)
    by_name = {layer.name: layer for layer in small.layers}
    new_blocks = {f"res{b}_bn2" for b in range(have, n_blocks)}
    for layer in big.layers:
        if layer.name in by_name and layer.get_weights():
            layer.set_weights(by_name[layer.name].get_weights())
        elif layer.name in new_blocks:  # gamma, beta = 0: the block's branch adds nothing
            w = layer.get_weights()
            w[0][...] = 0.0
            w[1][...] = 0.0
            layer.set_weights(w)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *small.input_shape[1:])).astype(np.float32)
    diff = float(np.abs(np.asarray(small(x, training=False))
                        - np.asarray(big(x, training=False))).max())
    if diff > 1e-4:  # a layer that was not copied: never write a network that is not the same
        raise ValueError(f"the grown network's faces differ from the source's by {diff:.3g}; "
                         "the source's layers do not match the grown network's names")
    record = {"format": "tfface-grow/1", "source": os.path.abspath(path),
              "sha256": file_sha256(path), "n_blocks": [have, n_blocks],
              "max_difference": diff}
    write_run_dir(out, big_cfg, big, GROW_FILE, record)
    return record


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from pipelines.soup import find_config
    from tfface.config import ConfigError
    from tfface.fileio import OutputDirError

    try:
        record = grow(args.source, find_config(args.config, args.source, "the source"),
                      args.n_blocks, args.out)
    except (ConfigError, ValueError, OutputDirError) as e:  # ConfigError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    have, n = record["n_blocks"]
    print(f"wrote {args.out}: {have} -> {n} residual blocks, the same faces (largest "
          f"difference {record['max_difference']:.2g})\nNext: python -m pipelines.train "
          f"--arch srgan --set model.params.n_blocks={n} --init-weights "
          f"{os.path.join(args.out, 'best.weights.h5')} ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
