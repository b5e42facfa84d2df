"""A run directory: the hand-off between training and everything after it.

``pipelines.train`` (through :func:`tfface.train.run`) writes one folder per run; the
converter, the validator, evaluation, restoring and the benchmarks read it with the
functions here, without importing the training engine::

    config.json          the resolved configuration (export rebuilds the model from it)
    checkpoints/         resumable state: models, optimizers, step, best score
    best.weights.h5      generator weights with the best validation PSNR
    last.weights.h5      generator weights at the end of the latest epoch
    metrics.csv          one row of train/validation metrics per epoch
    logs/                TensorBoard event files
    samples/             epoch_NNNN.png grids: input | output | target | mask
    summary.json         how the run ended and its final metrics
    .tfface-train.lock   present while a process trains in it (see tfface.runlock)

A run directory written by an earlier version reads the same way: the names are
fixed, and :func:`load_run_config` validates ``config.json`` like any file that may
come from someone else.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfface import keras
from tfface.config import Config, ConfigError
from tfface.models import get_arch

CONFIG_FILE = "config.json"
CKPT_DIR = "checkpoints"
BEST_WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
LOGS_DIR = "logs"
SAMPLES_DIR = "samples"

RESULT_FILES = (BEST_WEIGHTS, LAST_WEIGHTS, METRICS_FILE)
"""What a run that trained for at least an epoch leaves behind (training refuses to
start from step 0 over them)."""

RUNS_ROOT = "runs"
"""Where ``pipelines.train`` puts runs by default (relative to the working directory)."""

_NOT_A_RUN = "pass a folder written by python -m pipelines.train"


def weights_file(which: str) -> str:
    """File name of the ``best`` or ``last`` generator weights of a run."""
    return f"{which}.weights.h5"


def generator_inputs(cfg: Config) -> tuple[str, ...]:
    """Dataset keys the generator of ``cfg`` reads, in its input order."""
    if cfg.data.task == "sr":
        return ("lr",)
    if cfg.model.params.get("mask_input"):
        return ("occluded", "mask")
    return ("occluded",)


def model_input_shapes(cfg: Config) -> dict[str, tuple[int, int, int]]:
    """Per-image shape (H, W, C) of each generator input of ``cfg``, by dataset key."""
    size = int(cfg.data.image_size)
    lr = size // int(cfg.data.scale) if cfg.data.task == "sr" else size
    shapes = {"occluded": (size, size, 3), "mask": (size, size, 1), "lr": (lr, lr, 3)}
    return {k: shapes[k] for k in generator_inputs(cfg)}


def has_checkpoint(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a checkpoint to resume from."""
    return tf.train.latest_checkpoint(os.path.join(run_dir, CKPT_DIR)) is not None


def load_run_config(run_dir: str, input_size: int | None = None) -> tuple[Config, keras.Model]:
    """A run's config and its freshly built (untrained) generator.

    ``input_size``: build the generator for inputs of this side instead of the run's
    (the low-resolution side for SR), e.g. a fully convolutional SR model as 64 px tiles;
    ``cfg.data.image_size`` is changed to match and the config validated again.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist or holds no config.json.
        ConfigError: config.json is not a tfface configuration (another tool's folder,
            a damaged file) or describes a model that cannot be built.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"no such run directory: {run_dir}")
    cfg_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(cfg_path):
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); "
                                + _NOT_A_RUN)
    cfg = _config_of(cfg_path)  # validated before anything is built from it
    if input_size is not None:
        _resize_input(cfg, input_size)
    try:
        gen = get_arch(cfg.model.arch).build_generator(cfg)
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # values it cannot build
        if input_size is not None:
            raise _not_buildable(input_size, str(e)) from e
        raise _unusable(cfg_path, e) from e
    return cfg, gen


def _resize_input(cfg: Config, input_size: int) -> None:
    """Set ``cfg``'s image size so the generator's input side is ``input_size``.

    Raises:
        ConfigError: not a positive integer, or a size the model cannot be built at.
    """
    from tfface.config import validate

    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 8:
        raise ConfigError(f"the input size must be an integer of at least 8 px, got "
                          f"{input_size!r}")
    scale = int(cfg.data.scale) if cfg.data.task == "sr" else 1
    cfg.data.image_size = input_size * scale
    try:
        validate(cfg)
    except ConfigError as e:
        sr = f"; data.image_size is {scale} x the input side" if scale > 1 else ""
        raise _not_buildable(input_size, e.detail + sr) from None


def _not_buildable(input_size: int, detail: str) -> ConfigError:
    """The error of ``--input-size`` values the model cannot be built for."""
    return ConfigError(f"this model cannot be built for {input_size} px inputs ({detail})")


def _unusable(cfg_path: str, e: Exception) -> ConfigError:
    """The error of a config.json that cannot be loaded or built (``e`` says why)."""
    detail = e.detail if isinstance(e, ConfigError) else str(e)
    return ConfigError(f"{cfg_path} is not a usable tfface run configuration ({detail}); "
                       + _NOT_A_RUN)


def _config_of(cfg_path: str) -> Config:
    """:meth:`Config.load`, its errors as :func:`_unusable` ones (JSON, keys, values)."""
    try:
        return Config.load(cfg_path)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise _unusable(cfg_path, e) from e


def weights_source(run_dir: str, which: str = "best") -> str | None:
    """The weight file :func:`load_generator` loads for ``which``: the first of
    ``which``, ``last``, ``best`` that exists, or None (it then restores the newest
    checkpoint)."""
    for name in (which, "last", "best"):
        path = os.path.join(run_dir, weights_file(name))
        if os.path.exists(path):
            return path
    return None


def load_generator(run_dir: str, which: str = "best",
                   input_size: int | None = None) -> tuple[Config, keras.Model]:
    """Rebuild a run's generator from its config.json and load its ``best``/``last`` weights.

    Falls back to the newest checkpoint when the weight file is missing (a run that
    stopped before its first epoch ended). ``input_size``: as :func:`load_run_config`;
    the weights must fit (a fully convolutional generator's do at any size).
    """
    cfg, gen = load_run_config(run_dir, input_size)
    path = weights_source(run_dir, which)
    if path is not None:
        try:
            gen.load_weights(path)
        except (ValueError, OSError, KeyError) as e:
            if input_size is None:
                which_model = "described by " + os.path.join(run_dir, CONFIG_FILE)
                hint = "was the file copied from another run?"
            else:
                which_model = (f"at an input side of {input_size} px (is the model "
                               "fully convolutional?)")
                hint = "convert it at its own size"
            raise ConfigError(f"{path} does not hold weights of the model {which_model} "
                              f"({str(e).strip().splitlines()[0]}); {hint}") from e
        return cfg, gen
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, CKPT_DIR))
    if latest is None:
        raise FileNotFoundError(f"{run_dir} has no trained weights yet (no *.weights.h5, "
                                "no checkpoint)")
    key = "ema_generator" if cfg.train.ema_decay > 0 else "generator"
    tf.train.Checkpoint(**{key: gen}).restore(latest).expect_partial()
    return cfg, gen


DISC_PARAM_PREFIXES = ("disc", "critic", "local_critic", "local_size")
"""``model.params`` keys with these prefixes shape only the discriminator."""


def generator_params(cfg: Config) -> dict:
    """The generator's builder arguments of ``cfg`` that a fine-tune must share with the
    run it starts from: the family's defaults updated with ``model.params``, without the
    discriminator's (a fine-tune may change the critic, or start from a run made before a
    parameter existed) and without ``prefill_prior`` (a prior may be added)."""
    try:
        params = get_arch(cfg.model.arch).params(cfg)
    except ValueError:
        params = dict(cfg.model.params)
    # prefill_prior only adds the prior's weight, which a run without one leaves to be
    # set from the data (load_init_weights); every other layer must match.
    # upsample: a resize-form V-Net starts from a transposed-form run by weight surgery
    # (load_init_weights), so the two may differ there too.
    return {k: v for k, v in params.items()
            if not k.startswith(DISC_PARAM_PREFIXES) and k not in ("prefill_prior", "upsample")}


def init_weights_file(path: str, cfg: Config) -> str:
    """The ``.weights.h5`` file ``train.init_weights`` names, checked against ``cfg``.

    ``path`` is a run directory (its best weights, else its last) or a weights file.
    A run directory whose model differs from ``cfg.model`` is refused with the
    difference, before anything is loaded.
    """
    if os.path.isdir(path):
        cfg_path = os.path.join(path, CONFIG_FILE)
        if os.path.exists(cfg_path):
            try:
                other = Config.load(cfg_path)
            except (ConfigError, ValueError, TypeError, KeyError, AttributeError) as e:
                raise ConfigError(f"train.init_weights: {cfg_path} is not a usable tfface run "
                                  f"configuration ({e})") from None
            mine = (cfg.model.arch, cfg.model.preset, generator_params(cfg))
            theirs = (other.model.arch, other.model.preset, generator_params(other))
            if mine != theirs or cfg.data.task != other.data.task:
                raise ConfigError(
                    f"train.init_weights: {path} holds a {other.model.arch} "
                    f"({other.model.preset}) model with params {other.model.params}, this run "
                    f"builds a {cfg.model.arch} ({cfg.model.preset}) with {cfg.model.params}; "
                    "fine-tune with the same --arch/--preset and model params")
        for name in ("best", "last"):
            candidate = os.path.join(path, weights_file(name))
            if os.path.exists(candidate):
                return candidate
        raise ConfigError(f"train.init_weights: {path} holds no best/last .weights.h5 to start "
                          "from")
    if not os.path.isfile(path):
        raise ConfigError(f"train.init_weights: no such file or run directory: {path}")
    if not path.endswith(".weights.h5"):
        raise ConfigError(f"train.init_weights: {path} is not a Keras weights file "
                          "(*.weights.h5) or a run directory")
    return path


def load_init_weights(gen: keras.Model, cfg: Config, fit_source=None) -> str:
    """Load ``cfg.train.init_weights`` into ``gen``; returns the file read.

    A resize-form V-Net (``model.params.upsample``) starts from a transposed-form file by
    weight surgery (:func:`_load_converting_upsample`); with ``fit_source`` (the run's
    face source) the converted layers are then fitted on its training faces
    (:func:`fit_converted_upsample`).

    Only arrays are read from the file (no code runs). A file of another model is a
    :class:`ConfigError` and leaves nothing half-loaded to train on.
    """
    path = init_weights_file(os.path.expanduser(cfg.train.init_weights), cfg)
    before = gen.get_weights()
    twin = None  # the transposed-form V-Net read from the file, when converting
    try:
        if _needs_upsample_surgery(gen, cfg, path):
            twin = _load_converting_upsample(gen, cfg, path)
        elif _has_prior(gen) and not _file_has_prior(path):
            _load_without_prior(gen, cfg, path)
        else:
            gen.load_weights(path)
    except (ValueError, OSError, KeyError, TypeError) as e:
        gen.set_weights(before)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"train.init_weights: {path} does not hold weights of this run's "
                          f"{cfg.model.arch} ({cfg.model.preset}) generator ({first})") from e
    bad = [w.name for w in gen.weights if not np.all(np.isfinite(w.numpy()))]
    if bad:
        gen.set_weights(before)
        raise ConfigError(f"train.init_weights: {path} holds NaN/Inf values "
                          f"(in {', '.join(bad[:3])}); it cannot be trained from")
    if fit_source is not None and twin is not None:
        fit_converted_upsample(gen, cfg, fit_source, twin=twin)
    return path


def _has_prior(gen: keras.Model) -> bool:
    from tfface.models.layers import PRIOR_LAYER, PriorHoleFill

    try:
        return isinstance(gen.get_layer(PRIOR_LAYER), PriorHoleFill)
    except ValueError:
        return False


def _file_has_prior(path: str) -> bool:
    """Whether a ``.weights.h5`` file holds a weight for the face prior's layer."""
    import h5py

    from tfface.models.layers import PRIOR_LAYER

    try:
        with h5py.File(path, "r") as f:
            if "layers" in f and "vars" in f:  # the .weights.h5 format: groups by class
                return "layers/prior_hole_fill/vars/0" in f
            group = f["model_weights"] if "model_weights" in f else f
            return PRIOR_LAYER in group and len(group[PRIOR_LAYER].attrs.get(
                "weight_names", [])) > 0
    except (OSError, KeyError):
        return True  # let the plain load report the problem


def _load_without_prior(gen: keras.Model, cfg: Config, path: str) -> None:
    """Load a run made before ``prefill_prior`` into ``gen``: the file goes into the same
    generator without the prior (so every shape is checked as in a plain load), and its
    layers are copied over by name; the prior stays zero, for the run to set from its
    data (:func:`tfface.train.prior.init_face_prior`)."""
    import copy

    twin_cfg = copy.deepcopy(cfg)
    twin_cfg.model.params = dict(cfg.model.params, prefill_prior=False)
    twin = get_arch(cfg.model.arch).build_generator(twin_cfg)
    twin.load_weights(path)
    for layer in twin.layers:
        if layer.weights:
            gen.get_layer(layer.name).set_weights(layer.get_weights())


def _needs_upsample_surgery(gen: keras.Model, cfg: Config, path: str) -> bool:
    """Whether ``gen`` is a V-Net of a resize form (``model.params.upsample``) and the file
    holds a transposed-form V-Net's weights (transposed convolutions)."""
    if cfg.model.arch != "vnet" or get_arch("vnet").params(cfg)["upsample"] == "transpose":
        return False
    import h5py

    found = []
    try:
        with h5py.File(path, "r") as f:
            f.visit(lambda n: found.append(n) if "conv2d_transpose" in n
                    or "_decode_trans_conv" in n else None)
    except OSError:
        return False  # let the plain load report the problem
    return bool(found)


def _transposed_twin(cfg: Config, path: str) -> keras.Model:
    """``cfg``'s V-Net in the transposed form (``upsample=transpose``) with ``path``'s
    weights, every shape checked as in a plain load."""
    import copy

    twin_cfg = copy.deepcopy(cfg)
    twin_cfg.model.params = dict(cfg.model.params, upsample="transpose")
    twin = get_arch(cfg.model.arch).build_generator(twin_cfg)
    if _has_prior(twin) and not _file_has_prior(path):
        _load_without_prior(twin, twin_cfg, path)
    else:
        twin.load_weights(path)
    return twin


def _load_converting_upsample(gen: keras.Model, cfg: Config, path: str) -> keras.Model:
    """Load a transposed-form V-Net's file into a resize-form ``gen``: the file goes into
    the same generator with ``upsample=transpose``, every layer but the decoder's
    upsampling is copied by name, and each ``<level>_decode_conv`` starts from its
    ``<level>_decode_trans_conv`` (:func:`tfface.models.vnet.resize_conv_from_transpose`),
    one line printed for each. :func:`fit_converted_upsample` then refines them on data.
    Returns the transposed-form twin holding the file's weights."""
    from tfface.models.vnet import resize_conv_from_transpose, resize_decode_convs

    twin = _transposed_twin(cfg, path)
    mode = get_arch("vnet").params(cfg)["upsample"]
    for layer in twin.layers:
        if layer.weights and not layer.name.endswith("_decode_trans_conv"):
            gen.get_layer(layer.name).set_weights(layer.get_weights())
    for name in resize_decode_convs(gen):
        source = twin.get_layer(name[: -len("_conv")] + "_trans_conv")
        kernel, bias = source.get_weights()
        gen.get_layer(name).set_weights([resize_conv_from_transpose(kernel, mode), bias])
        how = ("its per-phase taps matched" if mode == "nearest_conv"
               else "its response averaged over the 4 phases, in the centre tap")
        print(f"Converted {source.name} {tuple(kernel.shape)} to {name} "
              f"(upsample={mode}): {how}, bias copied.")
    return twin


def fit_converted_upsample(gen: keras.Model, cfg: Config, source=None, batches: int = 4,
                           twin: keras.Model | None = None) -> bool:
    """After :func:`load_init_weights` converted a transposed-form V-Net into ``gen``'s
    resize form, fit the converted convolutions to the transposed ones on ``batches``
    training batches of 4 faces (:func:`tfface.models.vnet.fit_resize_convs`; measured on
    the 256 px V-Net: 0.3 dB below the transposed file instead of 0.9 dB), one line
    printed per layer. A no-op (False) for any other start. ``twin``: the transposed-form
    V-Net :func:`load_init_weights` already read from the file (read again when omitted)."""
    if twin is None:
        path = init_weights_file(os.path.expanduser(cfg.train.init_weights), cfg)
        if not _needs_upsample_surgery(gen, cfg, path):
            return False
        twin = _transposed_twin(cfg, path)
    from tfface.data.pipeline import make_dataset
    from tfface.models.vnet import fit_resize_convs

    for layer in twin.layers:  # gen's own state elsewhere (e.g. a prior set since)
        if layer.weights and not layer.name.endswith("_decode_trans_conv"):
            layer.set_weights(gen.get_layer(layer.name).get_weights())
    keys = generator_inputs(cfg)
    data = make_dataset(cfg, "train", batch_size=4, source=source).take(batches)
    feeds = [[batch[k] for k in keys] for batch in data]
    for name, before, after in fit_resize_convs(gen, twin, feeds):
        print(f"Fitted {name} to the transposed convolution on {4 * batches} training faces: "
              f"error {before:.3f} -> {after:.3f} of its output's mean square.")
    return True


def latest_run(root: str = RUNS_ROOT) -> str | None:
    """The most recently trained run directory directly under ``root``, or None.

    A run counts when it holds ``config.json`` and trained weights (best/last
    ``*.weights.h5`` or a checkpoint); "most recent" is the newest of those files.
    """
    if not os.path.isdir(root):
        return None
    found = []
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
            continue
        stamps = [os.path.getmtime(p) for p in
                  (os.path.join(path, f) for f in (BEST_WEIGHTS, LAST_WEIGHTS))
                  if os.path.isfile(p)]
        ckpt = os.path.join(path, CKPT_DIR, "checkpoint")
        if os.path.isfile(ckpt):
            stamps.append(os.path.getmtime(ckpt))
        if stamps:
            found.append((max(stamps), name, path))
    return max(found)[2] if found else None
