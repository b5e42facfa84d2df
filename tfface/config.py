"""Typed configuration: dataclasses, presets, JSON save/load and ``--set`` overrides.

A run is fully described by one :class:`Config`. It is written to ``config.json``
in the run directory, and export/evaluation rebuild everything from that file, so
no hyperparameter is ever typed twice.

Presets are data: every architecture family's spec (:class:`tfface.models.family.Family`)
holds ``presets`` (a mapping from preset name to a nested dict of overrides) and
:func:`resolve` applies one to the defaults below.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

TASKS = ("inpaint", "sr")
SCALES = (2, 3, 4)
"""Supported super-resolution factors (``data.scale``; :mod:`tfface.data.degrade` reads
them here: the config is the lowest layer)."""
SOURCES = ("synthetic", "folder", "tfds")
CONTENT_LOSSES = ("vgg54", "vgg54_preact", "pixel", "dlib_face")
LR_SCHEDULES = ("constant", "step", "linear", "cosine")
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
GAN_LOSSES = ("vanilla", "lsgan", "wgan-gp", "hinge")
"""Values of ``train.gan_loss`` (the table is :data:`tfface.train.gan_losses.GAN_LOSSES`)."""
PIXEL_LOSSES = ("mse", "l1")
"""Values of ``train.pixel_loss`` (the table is :data:`tfface.losses.PIXEL_LOSSES`)."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which and why.

    Raised by :meth:`Config.load`, the message starts with the file's path and
    ``detail`` holds the reason alone.
    """

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail if detail is not None else message


FACE_FRAMINGS = ("celeba", "template")
"""Values of ``data.face_framing``."""


@dataclass
class DataConfig:
    """Where clean faces come from and how training pairs are synthesized."""

    source: str = "synthetic"
    """``synthetic`` (built-in drawn faces, no data needed), ``folder`` or ``tfds``."""
    data_dir: str | None = None
    """Folder of face photos (recursive; jpg/png/webp/bmp) when ``source == "folder"``."""
    tfds_name: str = "celeb_a"
    tfds_data_dir: str | None = None
    image_size: int = 256
    """Side of the square faces the model sees (center crop, then resize)."""
    min_image_side: int | None = None
    """Folder photos whose shorter side is below this are skipped (upscaling them would
    teach blurry targets); ``None``: half of ``image_size``."""
    task: str = "inpaint"
    occlusions: dict[str, float] = field(
        default_factory=lambda: {
            "celeba_c": 0.3, "boxes": 0.1, "strokes_thin": 0.1, "strokes_medium": 0.1,
            "strokes_thick": 0.1, "facemask": 0.15, "sunglasses": 0.1, "eye_bar": 0.05,
        }
    )
    """Occlusion generators and their probabilities for the train split (every kind of
    damage a face restorer meets; see docs/occlusions.md)."""
    scale: int = 4
    """Super-resolution factor (task ``sr``): ``lr`` is ``image_size // scale`` pixels."""
    eval_occlusions: dict[str, float] | None = field(
        default_factory=lambda: {
            "celeba_c": 1.0, "strokes_thin": 1.0, "strokes_medium": 1.0, "strokes_thick": 1.0,
            "facemask": 1.0, "sunglasses": 1.0,
        }
    )
    """Mixture of the eval split (fixed: equal weights, reported per generator);
    ``None`` uses ``occlusions``."""
    occlusion_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-generator options, e.g. ``{"irregular": {"bins": [0, 1]}}``."""
    mask_dir: str | None = None
    """Folder of irregular hole masks (NVIDIA layout: white = hole) for ``irregular``."""
    facemask_dir: str | None = None
    """Folder of face-mask overlay templates with alpha (MaskTheFace layout + masks.cfg)."""
    face_framing: str = "celeba"
    """Where the faces of a ``folder`` source sit in their square crops, which places
    the face-shaped occluders (masks, sunglasses, eye bars): ``celeba`` (CelebA's
    aligned images, eyes at y = 0.51; the default of runs made before the key
    existed) or ``template`` (the measured framing of :data:`tfface.faces.align.TEMPLATE`,
    eyes at y = 0.43: the crops of ``pipelines.prepare`` and the faces-train/-dev
    photos)."""
    sr_downscale: str = "bicubic"
    """Downscaling kernel of the SR task: ``area``, ``bicubic`` (antialiased) or ``bilinear``."""
    degradation: str = "none"
    """Realistic degradation chain of the SR task (see :mod:`tfface.data.degrade`)."""
    degradation_options: dict[str, Any] = field(default_factory=dict)
    sr_crop: dict[str, Any] = field(default_factory=dict)
    """SR train split only: zoomed random crops of the faces, so the model learns faces at
    every scale (see :mod:`tfface.data.sr_crop`); empty (the default): whole faces."""
    lr_up: bool = False
    """Also emit ``lr_up``: the LR input upsampled (bicubic) to the HR size."""
    data_service: str | None = None
    """``grpc://HOST:PORT`` of a tf.data service dispatcher that runs synthesis."""
    eval_count: int = 256
    """Number of held-out faces in the fixed eval split."""
    synthetic_count: int = 20000
    """Number of distinct synthetic training faces (one 'epoch' of the synthetic source)."""
    seed: int = 1234
    """Global seed; every random choice in synthesis derives from (seed, element index)."""
    shuffle_files: bool = True


@dataclass
class ModelConfig:
    """Which architecture family and which size of it."""

    arch: str = "vnet"
    preset: str = "paper"
    params: dict[str, Any] = field(default_factory=dict)
    """Family-specific builder arguments (filled from the preset, overridable)."""


@dataclass
class TrainConfig:
    """Optimization and bookkeeping of a training run."""

    batch_size: int = 32
    epochs: int = 20
    steps_per_epoch: int | None = None
    """``None``: one pass over the training source per epoch."""
    eval_batches: int | None = None
    """``None``: the whole eval split."""
    g_lr: float = 1e-4
    d_lr: float = 2.5e-4
    beta_1: float = 0.5
    adv_weight: float = 1.0
    """Weight of the adversarial term in the generator loss; 0 trains purely supervised."""
    gan_loss: str | None = None
    """Adversarial loss: ``vanilla`` (BCE), ``lsgan``, ``wgan-gp`` or ``hinge``; ``None``:
    the family's (BCE for vnet, pix2pix and srgan, ``wgan-gp`` for wgan_gl, ``hinge`` for
    unmask; see :mod:`tfface.train.gan_losses`)."""
    pixel_weight: float = 100.0
    pixel_loss: str = "mse"
    label_smoothing: float = 0.1
    """One-sided label smoothing of the discriminator's real targets (``vanilla`` and
    ``lsgan`` losses; the others have no labels)."""
    save_every_steps: int = 500
    """Save a resumable checkpoint this often (also at every epoch end)."""
    sample_count: int = 6
    """Faces shown in each epoch's sample grid."""
    max_minutes: float | None = None
    """Stop cleanly (checkpoint saved) after this many minutes of training."""
    content_loss: str = "pixel"
    """Content term of the generator loss: ``vgg54`` (VGG19 φ5,4 after ReLU, SRGAN),
    ``vgg54_preact`` (before the ReLU, ESRGAN), ``pixel`` (the pixel loss, SRGAN-MSE) or
    ``dlib_face`` (a face perceptual loss on four feature maps of dlib's face ResNet,
    :func:`tfface.identity.dlib_resnet.perceptual_loss_fn`; the identity extra installs it)."""
    content_layers: list[str] | None = None
    """Feature maps of the ``dlib_face`` content term (names of layers of
    :mod:`tfface.identity.dlib_resnet`'s network, e.g. ``["stem_relu", "block2_out"]`` for
    edges and small parts only); ``None``: the four of
    :data:`~tfface.identity.dlib_resnet.PERCEPTUAL_LAYERS`."""
    content_weight: float = 0.0
    """Weight of the content term; 0 turns it off (no feature extractor is built)."""
    content_extractor: str = "vgg19"
    """Feature network of the VGG content losses: ``vgg19`` (needs its ImageNet weights,
    see ``vgg_weights``) or ``tiny-random`` (a small random-weight stand-in for tests and
    smoke runs only; it says nothing about perceptual quality)."""
    content_feature_scale: float = 1.0 / 12.75
    """Feature maps are multiplied by this before the MSE (SRGAN's 1/12.75)."""
    vgg_weights: str | None = None
    """Path of ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``; ``None``: the Keras
    cache (``~/.keras/models/``)."""
    identity_weight: float = 0.0
    """Weight of the identity term: the squared descriptor distance of target and
    restoration under a face recognizer (``identity_student``), in units of dlib's
    same-person distance. 0 turns it off."""
    identity_student: str | None = None
    """The recognizer of the identity term, needed when ``identity_weight`` > 0:
    ``"dlib"`` for dlib's own ResNet rebuilt in Keras from the file of the identity
    extra (:mod:`tfface.identity.dlib_resnet`, the network ``--identity dlib`` evaluates with),
    or the folder of a student distilled from it (``student.weights.h5`` +
    ``student.json``, made by ``python -m pipelines.identity_student``)."""
    init_weights: str | None = None
    """Start the generator from these weights instead of a random initialization
    (fine-tuning): a run directory (its ``best.weights.h5``; its model must be this
    config's model) or a ``.weights.h5`` file. Read once, when the run starts; a resumed
    run continues from its own checkpoint."""
    pretrain_steps: int = 0
    """Generator-only pre-training on the pixel loss for the first N steps (SRResNet
    phase of SRGAN); the adversarial and content terms start after it."""
    ema_decay: float = 0.0
    """Exponential moving average of the generator weights (e.g. 0.999), used for
    validation, best/last weights and export; 0 turns it off."""
    g_lr_schedule: str = "constant"
    """``constant``, ``step`` (× ``lr_decay_rate`` every ``lr_decay_steps``), ``linear``
    (constant for ``lr_decay_steps``, then linearly to 0 at the last step; pix2pix) or
    ``cosine`` (to 0 at the last step). Counted in the optimizer's own steps."""
    d_lr_schedule: str = "constant"
    lr_decay_steps: int | None = None
    lr_decay_rate: float = 0.1
    strategy: str = "default"
    """``tf.distribute`` strategy: ``default``, ``mirrored`` (all local GPUs, or CPUs),
    ``multiworker`` (TF_CONFIG) or ``tpu``. ``batch_size`` is the global batch."""
    mixed_precision: bool = False
    """``mixed_float16`` compute with dynamic loss scaling of both optimizers."""
    jit_compile: bool = False
    """Compile the train step with XLA."""
    steps_per_execution: int = 1
    """Train steps run per compiled call (Keras' ``steps_per_execution``): saves the
    per-call dispatch, which matters for small models (pix2pix tiny: +9 % images per
    CPU-second at 5). Callbacks then see every N-th step, so ``save_every_steps``
    and ``pretrain_steps`` must be multiples of it, and a NaN is caught at the end
    of the N-step call (the checkpoint before it stays the newest)."""
    deterministic: bool = False
    """Run TensorFlow ops deterministically (``enable_op_determinism``) during training,
    so two runs with the same seed give bit-identical losses and weights on the same
    machine. Off by default: on GPUs it slows some ops down and refuses ops that have
    no deterministic kernel (on CPUs the cost is small, see docs/reliability.md)."""
    # Options of one training regime each, kept flat here (the serialized form every
    # config.json has used); the regime reads them into its options dataclass
    # (tfface.train.wgan.WGANOptions, tfface.train.unmask.UnmaskOptions).
    n_critic: int = 1
    """Critic updates per generator update (``wgan_gp`` regime of ``wgan_gl``)."""
    gp_weight: float = 10.0
    """Weight of each critic's gradient penalty (the ``wgan-gp`` adversarial loss)."""
    grid_weight: float = 0.0
    """Weight of :func:`tfface.losses.grid_pattern` (inpainting): the energy of the fill's
    error that repeats every 8 px on the pixel grid, the stripes and dots a generator
    with three stride-2 levels paints when a critic asks for texture (runs D and E,
    docs/realism.md). 0: off."""
    grid_period: int = 8
    """Period (px) at which :func:`tfface.losses.grid_pattern` folds the fill's error; it
    catches that period and its divisors (16 also catches 8, 4 and 2: the frame-locked
    16 px pattern of runs F and G)."""
    spectral_weight: float = 0.0
    """Weight of :func:`tfface.losses.spectral_amplitude` of target and restoration: the
    distance of their amplitude spectra per ``spectral_patch`` px square, phase ignored, a
    term the average of every plausible detail (a blur) does not satisfy (docs/realism.md).
    Any task; on a ``keep_known`` inpainting model only the squares over the hole count.
    0: off."""
    mirror_weight: float = 0.0
    """Weight of a mirror self-ensemble distillation term: the L1 distance of the
    generator's output from the average of the EMA generator's outputs on the input and on
    its left-right mirror (mirrored back), a target that scores higher than either output
    alone (``tfface-restore --sr-mirror``), so one call learns what two calls give. Needs
    ``ema_decay`` > 0 (the EMA copy is the teacher; gradients stop there); the ``gan`` and
    ``wgan_gp`` regimes. 0: off."""
    spectral_patch: int = 32
    """Side (px) of the squares :func:`tfface.losses.spectral_amplitude` compares (4 to
    ``data.image_size``; checked while ``spectral_weight`` > 0)."""
    critic_shift: int = 0
    """Shift the discriminator's view (image and hole alike; real, restored and the
    penalty's interpolations alike) by a random offset in ``[-N, N]`` pixels on each
    axis, drawn once per step (reflected border): a strided critic's input gradient
    ripples at its strides, locked to the pixel grid, and a generator that follows it
    paints that ripple (the horizontal 8 px stripes of run D, docs/realism.md); with the
    grid moving every step the ripple averages out. 0: off."""
    coarse_weight: float = 1.0
    """Weight of the coarse stage's pixel loss (``unmask`` regime)."""
    mask_weight: float = 1.0
    """Weight of the occluder segmentation's Dice loss (``unmask`` regime)."""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | os.PathLike) -> None:
        """Write the config as JSON, atomically (a killed process never leaves half a file)."""
        from tfface.fileio import atomic_write

        atomic_write(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        cfg = cls()
        apply_overrides(cfg, d)
        return cfg

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Config":
        """Read and validate a ``config.json`` (a file that may come from someone else).

        Only a regular file of at most :data:`MAX_CONFIG_BYTES` is read (a named pipe
        never blocks the caller), and the result passes :func:`validate`, including
        every ``model.params`` value (:mod:`tfface.models.params`), before anything
        is built from it.

        Raises:
            ConfigError: one line that names the file and what is wrong with it.
        """
        from tfface.fileio import NotRegularFileError, open_regular

        shown = os.fspath(path)
        try:
            with open_regular(path) as f:
                raw = f.read(MAX_CONFIG_BYTES + 1)
            if len(raw) > MAX_CONFIG_BYTES:
                raise ConfigError(f"larger than {MAX_CONFIG_BYTES // 1000} kB (a tfface "
                                  "config is a few kB)")
            data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
            cfg = cls.from_dict(data)
            validate(cfg)
        except FileNotFoundError:
            raise
        except NotRegularFileError as e:
            detail = str(e)
        except OSError as e:
            detail = f"cannot be read ({e.strerror or e})"
        except UnicodeDecodeError:
            detail = "not UTF-8 text"
        except json.JSONDecodeError as e:
            detail = f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        except RecursionError:
            detail = "nested too deeply"
        except (ConfigError, ValueError, TypeError) as e:
            detail = " ".join(str(e).split())
        else:
            return cfg
        raise ConfigError(f"{shown}: {detail}", detail)


MAX_CONFIG_BYTES = 1_000_000
"""Largest ``config.json`` :meth:`Config.load` reads (a real one is about 3 kB)."""


def _refuse_constant(name: str) -> Any:
    raise ConfigError(f"holds the non-finite number {name}; every value must be finite")


def _describe(hint: Any) -> str:
    """A type annotation in words: ``int | None`` → 'an integer or null'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "null"
    if origin is dict or hint is dict:
        inner = _describe(args[1]) if len(args) == 2 and args[1] is not Any else ""
        inner = inner.removeprefix("an ").removeprefix("a ")
        return "a JSON object" + (f" of {inner}s" if inner else "")
    if origin is list or hint is list:
        return "a JSON list"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def _typed(value: Any, hint: Any) -> tuple[bool, Any]:
    """(fits, value converted to the annotation), e.g. 1 → 1.0 for a float field."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            ok, v = _typed(value, a)
            if ok:
                return True, v
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if hint is str:
        return isinstance(value, str), value
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            return False, value
        if len(args) == 2 and args[1] is not Any:
            out = {}
            for k, v in value.items():
                ok, out[k] = _typed(v, args[1])
                if not ok:
                    return False, value
            return True, out
        return True, dict(value)
    if origin is list or hint is list:
        return isinstance(value, (list, tuple)), list(value) if isinstance(value, (list, tuple)) \
            else value
    return True, value


def apply_overrides(cfg: Any, overrides: Mapping[str, Any], prefix: str = "") -> None:
    """Recursively set dataclass fields from a nested mapping.

    Unknown keys and values of the wrong type are :class:`ConfigError`\ s naming the
    key and what it accepts (ints are accepted for float fields).
    """
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"config{' section ' + prefix.rstrip('.') if prefix else ''} must be "
                          f"a JSON object of keys, got {overrides!r}")
    hints = typing.get_type_hints(type(cfg)) if dataclasses.is_dataclass(cfg) else {}
    for key, value in overrides.items():
        if not hasattr(cfg, key) or not dataclasses.is_dataclass(cfg):
            valid = ", ".join(f.name for f in dataclasses.fields(cfg))
            raise ConfigError(f"unknown config key '{prefix}{key}' (valid here: {valid})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                valid = ", ".join(f.name for f in dataclasses.fields(current))
                raise ConfigError(f"'{prefix}{key}' is a section, not a value; set one of its "
                                  f"keys, e.g. {prefix}{key}.KEY=VALUE (keys: {valid})")
            apply_overrides(current, value, prefix=f"{prefix}{key}.")
            continue
        ok, typed = _typed(value, hints.get(key, Any))
        if not ok:
            raise ConfigError(f"{prefix}{key} must be {_describe(hints[key])}, got {value!r}"
                              + (f" ({type(value).__name__})" if not isinstance(value, str)
                                 else ""))
        if isinstance(current, dict) and isinstance(typed, Mapping) and key == "params":
            current.update(typed)
        else:
            setattr(cfg, key, typed)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["train.batch_size=8", "data.occlusions={\\"boxes\\": 1}"]`` into a nested dict.

    Values are parsed as JSON when possible (numbers, booleans, null, lists, objects)
    and kept as strings otherwise.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def resolve(
    arch: str,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the config of ``arch`` at ``preset`` (its default when None), then apply overrides."""
    from tfface.models import get_arch

    family = get_arch(arch)
    preset = preset or family.default_preset
    if preset not in family.presets:
        raise ConfigError(
            f"unknown preset '{preset}' for arch '{arch}'; choose one of: "
            + ", ".join(family.presets)
        )
    cfg = Config()
    cfg.model.arch = arch
    cfg.model.preset = preset
    apply_overrides(cfg, family.presets[preset])
    if overrides:
        apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def _need(ok: bool, key: str, valid: str, got: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {valid}, got {got!r}")


def _near_multiples(x: int, k: int) -> str:
    lo = max(k, x // k * k)
    return f"{lo} or {lo + k}" if lo != x else str(x)


def _validate_content(t) -> None:
    """The content term's settings of ``t`` (a :class:`TrainConfig`)."""
    if t.content_loss not in CONTENT_LOSSES:
        raise ConfigError(f"train.content_loss must be one of {CONTENT_LOSSES}, "
                          f"got '{t.content_loss}'")
    if t.content_layers is not None:
        if t.content_loss != "dlib_face":
            raise ConfigError("train.content_layers picks the feature maps of the dlib_face "
                              f"content term; train.content_loss is '{t.content_loss}'")
        if not isinstance(t.content_layers, (list, tuple)) or not t.content_layers or not all(
                isinstance(n, str) and n for n in t.content_layers):
            raise ConfigError("train.content_layers must be a non-empty list of layer names, "
                              f"e.g. [\"stem_relu\", \"block2_out\"], got {t.content_layers!r}")
    if t.content_extractor not in ("vgg19", "tiny-random"):
        raise ConfigError("train.content_extractor must be 'vgg19' or 'tiny-random', "
                          f"got '{t.content_extractor}'")


def validate(cfg: Config) -> None:
    """Raise :class:`ConfigError` naming the key and its valid range for values that
    cannot work (checked before any data is read or model is built)."""
    d, t = cfg.data, cfg.train
    # Types first (a config built in Python or loaded from JSON bypasses --set checks).
    for section, name in ((d, "data"), (cfg.model, "model"), (t, "train")):
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):
            ok, typed = _typed(getattr(section, f.name), hints[f.name])
            _need(ok, f"{name}.{f.name}", _describe(hints[f.name]), getattr(section, f.name))
            setattr(section, f.name, typed)
    if d.task not in TASKS:
        raise ConfigError(f"data.task must be one of {TASKS}, got '{d.task}'")
    if d.source not in SOURCES:
        raise ConfigError(f"data.source must be one of {SOURCES}, got '{d.source}'")
    if d.face_framing not in FACE_FRAMINGS:
        raise ConfigError(f"data.face_framing must be one of {FACE_FRAMINGS}, got '{d.face_framing}'")
    if d.source == "folder" and not d.data_dir:
        raise ConfigError("data.source 'folder' needs data.data_dir (use --data-dir DIR)")
    if d.image_size < 16 or d.image_size % 8:
        raise ConfigError(f"data.image_size must be a multiple of 8 and >= 16, got {d.image_size}")
    if d.task == "inpaint":
        if not d.occlusions or any(p < 0 for p in d.occlusions.values()) or sum(
            d.occlusions.values()
        ) <= 0:
            raise ConfigError(
                f"data.occlusions must map generator names to non-negative probabilities "
                f"with a positive sum, got {d.occlusions}"
            )
    _need(d.eval_count >= 1, "data.eval_count", "an integer >= 1", d.eval_count)
    _need(d.synthetic_count >= 1, "data.synthetic_count", "an integer >= 1", d.synthetic_count)
    _need(d.min_image_side is None or d.min_image_side >= 1, "data.min_image_side",
          "null (half of data.image_size) or an integer >= 1", d.min_image_side)
    _need(t.batch_size >= 1, "train.batch_size", "an integer >= 1", t.batch_size)
    _need(t.epochs >= 1, "train.epochs", "an integer >= 1", t.epochs)
    _need(t.steps_per_epoch is None or t.steps_per_epoch >= 1, "train.steps_per_epoch",
          "an integer >= 1 (or null for one pass over the data)", t.steps_per_epoch)
    _need(t.eval_batches is None or t.eval_batches >= 1, "train.eval_batches",
          "an integer >= 1 (or null for the whole eval split)", t.eval_batches)
    _need(t.g_lr > 0, "train.g_lr", "a number > 0", t.g_lr)
    _need(t.d_lr > 0, "train.d_lr", "a number > 0", t.d_lr)
    _need(0 <= t.beta_1 < 1, "train.beta_1", "in [0, 1)", t.beta_1)
    _need(t.save_every_steps >= 1, "train.save_every_steps", "an integer >= 1",
          t.save_every_steps)
    _need(t.sample_count >= 1, "train.sample_count", "an integer >= 1", t.sample_count)
    _need(t.max_minutes is None or t.max_minutes > 0, "train.max_minutes",
          "a number of minutes > 0 (or null: no limit)", t.max_minutes)
    _need(t.lr_decay_steps is None or t.lr_decay_steps >= 1, "train.lr_decay_steps",
          "an integer >= 1 (or null)", t.lr_decay_steps)
    _need(t.lr_decay_rate > 0, "train.lr_decay_rate", "a number > 0", t.lr_decay_rate)
    _need(t.content_feature_scale > 0, "train.content_feature_scale", "a number > 0",
          t.content_feature_scale)
    if t.pixel_loss not in PIXEL_LOSSES:
        raise ConfigError(f"train.pixel_loss must be 'mse' or 'l1', got '{t.pixel_loss}'")
    if t.adv_weight < 0 or t.pixel_weight < 0:
        raise ConfigError("train.adv_weight and train.pixel_weight must be >= 0, got "
                          f"{t.adv_weight} and {t.pixel_weight}")
    if not 0 <= t.label_smoothing < 0.5:
        raise ConfigError(f"train.label_smoothing must be in [0, 0.5), got {t.label_smoothing}")
    if t.gan_loss is not None and t.gan_loss not in GAN_LOSSES:
        raise ConfigError(f"train.gan_loss must be one of {GAN_LOSSES} (or null: the "
                          f"family's), got '{t.gan_loss}'")
    _validate_content(t)
    if t.identity_weight < 0:
        raise ConfigError(f"train.identity_weight must be >= 0, got {t.identity_weight}")
    if t.identity_weight > 0 and not t.identity_student:
        raise ConfigError("train.identity_weight > 0 needs train.identity_student ('dlib', "
                          "or a folder made by python -m pipelines.identity_student)")
    if t.mirror_weight < 0:
        raise ConfigError(f"train.mirror_weight must be >= 0, got {t.mirror_weight}")
    if t.mirror_weight > 0 and t.ema_decay <= 0:
        raise ConfigError("train.mirror_weight > 0 needs train.ema_decay > 0 (the EMA copy is "
                          f"its teacher), got ema_decay {t.ema_decay}")
    if t.content_weight < 0 or t.pretrain_steps < 0:
        raise ConfigError("train.content_weight and train.pretrain_steps must be >= 0, got "
                          f"{t.content_weight} and {t.pretrain_steps}")
    k = t.steps_per_execution
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"train.steps_per_execution must be an integer >= 1, got {k!r}")
    for key in ("save_every_steps", "pretrain_steps"):
        if getattr(t, key) % k:
            raise ConfigError(f"train.{key} ({getattr(t, key)}) must be a multiple of "
                              f"train.steps_per_execution ({k})")
    if not 0 <= t.ema_decay < 1:
        raise ConfigError(f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    for key in ("g_lr_schedule", "d_lr_schedule"):
        sched = getattr(t, key)
        if sched not in LR_SCHEDULES:
            raise ConfigError(f"train.{key} must be one of {LR_SCHEDULES}, got '{sched}'")
        if sched in ("step", "linear") and not t.lr_decay_steps:
            raise ConfigError(f"train.{key} '{sched}' needs train.lr_decay_steps")
    if not isinstance(t.n_critic, int) or t.n_critic < 1:
        raise ConfigError(f"train.n_critic must be an integer >= 1, got {t.n_critic!r}")
    if not isinstance(t.critic_shift, int) or isinstance(t.critic_shift, bool):
        raise ConfigError(f"train.critic_shift must be a whole number of pixels, got "
                          f"{t.critic_shift!r}")
    if not isinstance(t.grid_period, int) or isinstance(t.grid_period, bool) \
            or not 2 <= t.grid_period <= cfg.data.image_size // 2:
        raise ConfigError(f"train.grid_period must be a whole number of pixels from 2 to half "
                          f"the image size ({cfg.data.image_size}), got {t.grid_period!r}")
    if not isinstance(t.spectral_patch, int) or isinstance(t.spectral_patch, bool) \
            or (t.spectral_weight > 0 and not 4 <= t.spectral_patch <= cfg.data.image_size):
        raise ConfigError(f"train.spectral_patch must be a whole number of pixels from 4 to "
                          f"the image size ({cfg.data.image_size}), got {t.spectral_patch!r}")
    if t.grid_weight > 0 and cfg.data.task != "inpaint":
        raise ConfigError("train.grid_weight applies to inpainting runs only (it reads the hole)")
    if t.critic_shift >= cfg.data.image_size // 2:
        raise ConfigError(f"train.critic_shift ({t.critic_shift}) must be below half the "
                          f"image size ({cfg.data.image_size})")
    if min(t.gp_weight, t.coarse_weight, t.mask_weight) < 0:
        raise ConfigError("train.gp_weight, train.coarse_weight and train.mask_weight "
                          "must be >= 0")
    if t.strategy not in STRATEGIES:
        raise ConfigError(f"train.strategy must be one of {STRATEGIES}, got '{t.strategy}'")
    _validate_limits(cfg)
    _validate_for_model(cfg)


LIMITS: dict[str, tuple[float, float]] = {
    "data.image_size": (16, 2048),
    "data.min_image_side": (1, 100_000),
    "data.scale": (1, 16),
    "data.eval_count": (1, 100_000),
    "data.synthetic_count": (1, 100_000_000),
    "data.seed": (0, 2**63 - 1),
    "train.batch_size": (1, 4096),
    "train.epochs": (1, 1_000_000),
    "train.steps_per_epoch": (1, 100_000_000),
    "train.eval_batches": (1, 1_000_000),
    "train.g_lr": (0, 1),
    "train.d_lr": (0, 1),
    "train.adv_weight": (0, 1e6),
    "train.pixel_weight": (0, 1e6),
    "train.save_every_steps": (1, 10**9),
    "train.sample_count": (1, 64),
    "train.max_minutes": (0, 525_600),
    "train.content_weight": (0, 1e6),
    "train.identity_weight": (0, 1e6),
    "train.content_feature_scale": (0, 1e6),
    "train.pretrain_steps": (0, 10**9),
    "train.lr_decay_steps": (1, 10**9),
    "train.lr_decay_rate": (0, 1e3),
    "train.steps_per_execution": (1, 10_000),
    "train.n_critic": (1, 100),
    "train.gp_weight": (0, 1e6),
    "train.critic_shift": (0, 64),
    "train.grid_weight": (0, 1e9),
    "train.spectral_weight": (0, 1e6),
    "train.mirror_weight": (0, 1e6),
    "train.coarse_weight": (0, 1e6),
    "train.mask_weight": (0, 1e6),
}
"""Upper (and lower) bounds of values no real run exceeds: a config with an eval split
of 10^8 faces or a learning rate of 10^9 is refused before anything is built."""


def _validate_limits(cfg: Config) -> None:
    """Every number finite and within :data:`LIMITS`; mixtures finite and bounded."""
    from tfface.models.params import shown

    for section, name in ((cfg.data, "data"), (cfg.train, "train")):
        for f in dataclasses.fields(section):
            key, v = f"{name}.{f.name}", getattr(section, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key} must be a finite number, got {v!r}")
            if key in LIMITS and v is not None and not isinstance(v, bool):
                lo, hi = LIMITS[key]
                if not lo <= v <= hi:
                    raise ConfigError(f"{key} must be between {lo:g} and {hi:g}, got "
                                      f"{shown(v)}")
    for key in ("occlusions", "eval_occlusions"):
        mix = getattr(cfg.data, key) or {}
        if len(mix) > 64 or any(not math.isfinite(p) or not 0 <= p <= 1e6
                                for p in mix.values()):
            raise ConfigError(f"data.{key} must map at most 64 generator names to finite "
                              f"probabilities in [0, 1e6], got {shown(mix)}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?(:[0-9]+(\.[0-9]+){0,2})?",
                        cfg.data.tfds_name or "celeb_a"):
        raise ConfigError(f"data.tfds_name must be a TFDS dataset name such as 'celeb_a' or "
                          f"'celeb_a:2.1.0', got {shown(cfg.data.tfds_name)}")


def _validate_for_model(cfg: Config) -> None:
    """Checks that depend on the architecture: task, SR scale, down-sampling factor."""
    from tfface.models import get_arch

    d, m = cfg.data, cfg.model
    try:
        family = get_arch(m.arch)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"model.arch: {e}") from None
    from tfface.models.params import check_params

    try:  # before anything reads them: params reach builders and eval()-ing libraries
        m.params = check_params(m.arch, m.params)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if family.task != d.task:
        raise ConfigError(f"model.arch '{m.arch}' is a {family.task} model, but data.task is "
                          f"'{d.task}'")
    if cfg.train.mirror_weight > 0 and family.regime == "unmask":
        raise ConfigError(f"train.mirror_weight applies to one-output generators; {m.arch} "
                          "trains under the unmask regime, whose loss has no such term")
    if family.supports_scale is not None:  # the family reads data.scale
        scales = tuple(s for s in SCALES if family.supports_scale(s))
        _need(d.scale in scales, "data.scale", f"one of {scales} for {m.arch}", d.scale)
    if family.downsampling_factor is None:
        return
    try:
        factor = int(family.downsampling_factor(cfg))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"model.params of {m.arch} are invalid: {e}") from None
    if d.image_size % factor:
        raise ConfigError(
            f"data.image_size must be a multiple of {factor} for {m.arch} (preset {m.preset}: "
            f"the network down-samples the image by {factor}), got {d.image_size}; "
            f"e.g. {_near_multiples(d.image_size, factor)}")
