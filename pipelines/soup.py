"""Average the weights of fine-tunes of one network (a "model soup") into a run directory.

Two fine-tunes that start from the same trained weights stay in one basin of the loss, so
their weights can be averaged, and the average often scores better than either (Wortsman et
al., ICML 2022; ESRGAN's network interpolation is the two-model case with a slider). The
shipped x4 SR file is such an average (android_demo_assets/README.md)::

    python -m pipelines.soup runs/sr-hq-ft/best.weights.h5 runs/sr-spec/last.weights.h5 \\
        --config runs/sr-hq-ft --out runs/sr-soup
    python -m tflite.convert --run runs/sr-soup --int8

Each source is a ``.weights.h5`` file or a run directory (its best weights, else its last);
every one is loaded into the model that ``--config`` describes, so a file of another network
is refused with the layer that differs, before anything is written. ``--coef`` weighs the
sources (default: equal; they must sum to 1). The output folder gets ``config.json``,
``best.weights.h5`` and ``soup.json`` (the sources, their SHA-256 and coefficients); an
existing, non-empty folder is refused, never overwritten.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

import tfface  # noqa: F401
from tfface.cli import prog_name

SOUP_FILE = "soup.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.soup", "tfface-soup"),
        description="Average the weights of several fine-tunes of one network (same "
        "architecture, started from the same weights) into a new run directory that "
        "tflite.convert, pipelines.evaluate and --init-weights read.",
        epilog="Writes OUT/config.json (the network's config), OUT/best.weights.h5 (the "
        "average) and OUT/soup.json (each source's path, SHA-256 and coefficient). "
        "Example: python -m pipelines.soup runs/a runs/b/last.weights.h5 --config runs/a "
        "--out runs/soup")
    p.add_argument("sources", nargs="+", help=".weights.h5 files or run directories (best "
                   "weights, else last) of the same network; two or more")
    p.add_argument("--config", help="run directory or config.json that describes the network "
                   "(default: the first source's run directory); copied to the output")
    p.add_argument("--coef", type=float, nargs="+", help="one weight per source, summing to 1 "
                   "(default: equal); 0.3 0.7 puts 70 %% of the second source in")
    p.add_argument("--out", required=True, help="new run directory to write (refused if it "
                   "exists and is not empty)")
    return p


def _is_float(a) -> bool:
    """A floating-point array (float16/32/64 and bfloat16, whose numpy kind is 'V')."""
    a = np.asarray(a)
    return a.dtype.kind == "f" or a.dtype.name == "bfloat16"


def find_config(config: str | None, source: str, what: str = "the first source") -> str:
    """The ``config.json`` that ``--config`` names, else the one in ``source``'s run
    directory; a one-line ValueError that says to pass ``--config`` when there is none."""
    from tfface.rundir import CONFIG_FILE

    src = config or source
    path = os.path.join(src, CONFIG_FILE) if os.path.isdir(src) else src
    if not (os.path.isfile(path) and path.endswith(".json")):
        where = "--config" if config else what
        raise ValueError(f"{where} ({src}) is not a run directory with {CONFIG_FILE} or a "
                         ".json config; pass --config RUN_DIR")
    return path


def write_run_dir(out: str, cfg, gen, record_file: str, record: dict) -> None:
    """Write ``out`` as a run directory: ``config.json``, ``best.weights.h5`` (``gen``'s
    weights) and ``record_file`` (``record`` as JSON), each atomically."""
    from tfface.fileio import atomic_path, atomic_write, check_writable_dir
    from tfface.rundir import BEST_WEIGHTS, CONFIG_FILE

    os.makedirs(out, exist_ok=True)
    check_writable_dir(out)
    cfg.save(os.path.join(out, CONFIG_FILE))
    with atomic_path(os.path.join(out, BEST_WEIGHTS)) as tmp:
        gen.save_weights(tmp)
    atomic_write(os.path.join(out, record_file), json.dumps(record, indent=2) + "\n")


def load_source(gen, source: str, cfg, config_path: str) -> str:
    """Load ``source`` (a run directory: its best weights, else its last; or a
    ``.weights.h5`` file) into ``gen``, the network ``config_path`` describes; returns the
    weights file's path.

    Raises:
        ValueError: one line: no weights there, or weights of another network.
    """
    from tfface.config import ConfigError
    from tfface.rundir import init_weights_file

    try:
        path = init_weights_file(source, cfg)
    except ConfigError as e:
        raise ValueError(str(e).replace("train.init_weights: ", "source ")) from None
    try:
        gen.load_weights(path)
    except (ValueError, OSError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path} does not hold weights of the network {config_path} "
                         f"describes ({first})") from None
    return path


def soup(sources: list[str], coefs: list[float], config_path: str, out: str) -> dict:
    """Write the weighted average of ``sources`` (loaded into the model of ``config_path``)
    as a run directory ``out``; returns what ``soup.json`` records.

    Raises:
        ValueError: bad coefficients, too few sources, a source that is not weights of
            this network, or an ``out`` that exists and is not empty.
        tfface.config.ConfigError: ``config_path`` is not a usable configuration.
    """
    from tfface.cards import file_sha256
    from tfface.config import Config
    from tfface.models import get_arch

    if len(sources) < 2:
        raise ValueError("a soup needs two or more sources")
    if len(coefs) != len(sources):
        raise ValueError(f"--coef gives {len(coefs)} weights for {len(sources)} sources")
    if not all(math.isfinite(c) and c >= 0 for c in coefs) \
            or not math.isclose(sum(coefs), 1.0, abs_tol=1e-3):
        raise ValueError(f"--coef must be numbers >= 0 that sum to 1, got {coefs}")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(f"{out} exists and is not an empty folder; choose another --out")
    cfg = Config.load(config_path)  # validated: a config from elsewhere runs no code
    try:
        gen = get_arch(cfg.model.arch).build_generator(cfg)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{config_path} describes no model that can be built ({e})") from None
    total, reference, files = None, None, []
    for src, c in zip(sources, coefs):
        path = load_source(gen, src, cfg, config_path)
        arrays = [np.asarray(w, np.float64) if _is_float(w) else np.asarray(w)
                  for w in gen.get_weights()]
        if total is None:
            reference = arrays
            total = [a * c if _is_float(a) else a for a in arrays]
        else:
            for i, a in enumerate(arrays):
                if _is_float(a):
                    total[i] = total[i] + a * c
                elif not np.array_equal(a, reference[i]):
                    raise ValueError(f"{path}: a non-float weight ({gen.weights[i].path}) "
                                     "differs from the first source's; these are not "
                                     "fine-tunes of one network")
        files.append({"path": os.path.abspath(path), "sha256": file_sha256(path), "coef": c})
    s = sum(coefs)  # within 1e-3 of 1: the average is exactly a weighted mean
    gen.set_weights([(t / s).astype(w.dtype) if _is_float(t) else t
                     for t, w in zip(total, reference)])
    record = {"format": "tfface-soup/1", "config": os.path.abspath(config_path),
              "sources": files}
    write_run_dir(out, cfg, gen, SOUP_FILE, record)
    return record


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tfface.config import ConfigError
    from tfface.fileio import OutputDirError

    coefs = args.coef or [1.0 / len(args.sources)] * len(args.sources)
    try:
        record = soup(args.sources, coefs, find_config(args.config, args.sources[0]),
                      args.out)
    except (ConfigError, ValueError, OutputDirError) as e:  # ConfigError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    parts = ", ".join(f"{s['coef']:.3g} x {s['path']}" for s in record["sources"])
    print(f"wrote {args.out}: {parts}\nNext: python -m tflite.convert --run {args.out} --int8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
