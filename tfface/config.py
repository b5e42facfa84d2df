"""Typed configuration: dataclasses, presets, JSON save/load and ``--set`` overrides.

A run is fully described by one :class:`Config`. It is written to ``config.json``
in the run directory, and export/evaluation rebuild everything from that file, so
no hyperparameter is ever typed twice.

Presets are data: every architecture family declares ``PRESETS`` (a mapping from
preset name to a nested dict of overrides) and :func:`resolve` applies one to the
defaults below.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

TASKS = ("inpaint", "sr")
SOURCES = ("synthetic", "folder", "tfds")
CONTENT_LOSSES = ("vgg54", "vgg54_preact", "pixel")
LR_SCHEDULES = ("constant", "step", "linear", "cosine")
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which and why."""


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
    sr_downscale: str = "bicubic"
    """Downscaling kernel of the SR task: ``area``, ``bicubic`` (antialiased) or ``bilinear``."""
    degradation: str = "none"
    """Realistic degradation chain of the SR task (see :mod:`tfface.data.degrade`)."""
    degradation_options: dict[str, Any] = field(default_factory=dict)
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
    """Weight of the adversarial BCE term in the generator loss; 0 trains purely supervised."""
    pixel_weight: float = 100.0
    pixel_loss: str = "mse"
    label_smoothing: float = 0.1
    """One-sided label smoothing of the discriminator's real targets."""
    save_every_steps: int = 500
    """Save a resumable checkpoint this often (also at every epoch end)."""
    sample_count: int = 6
    """Faces shown in each epoch's sample grid."""
    max_minutes: float | None = None
    """Stop cleanly (checkpoint saved) after this many minutes of training."""
    content_loss: str = "pixel"
    """Content term of the generator loss: ``vgg54`` (VGG19 φ5,4 after ReLU, SRGAN),
    ``vgg54_preact`` (before the ReLU, ESRGAN) or ``pixel`` (the pixel loss, SRGAN-MSE)."""
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
    n_critic: int = 1
    """Critic updates per generator update (WGAN-GP regime of ``wgan_gl``)."""
    gp_weight: float = 10.0
    """Weight of each critic's gradient penalty (WGAN-GP regime)."""
    coarse_weight: float = 1.0
    """Weight of the coarse stage's pixel loss (``unmask``)."""
    mask_weight: float = 1.0
    """Weight of the occluder segmentation's Dice loss (``unmask``)."""


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
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        cfg = cls()
        apply_overrides(cfg, d)
        return cfg

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Config":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def apply_overrides(cfg: Any, overrides: Mapping[str, Any], prefix: str = "") -> None:
    """Recursively set dataclass fields from a nested mapping; unknown keys are errors."""
    for key, value in overrides.items():
        if not hasattr(cfg, key) or not dataclasses.is_dataclass(cfg):
            valid = ", ".join(f.name for f in dataclasses.fields(cfg))
            raise ConfigError(f"unknown config key '{prefix}{key}' (valid here: {valid})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            apply_overrides(current, value, prefix=f"{prefix}{key}.")
        elif isinstance(current, dict) and isinstance(value, Mapping) and key == "params":
            current.update(value)
        else:
            setattr(cfg, key, value)


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
    preset = preset or family.DEFAULT_PRESET
    if preset not in family.PRESETS:
        raise ConfigError(
            f"unknown preset '{preset}' for arch '{arch}'; choose one of: "
            + ", ".join(family.PRESETS)
        )
    cfg = Config()
    cfg.model.arch = arch
    cfg.model.preset = preset
    apply_overrides(cfg, family.PRESETS[preset])
    if overrides:
        apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Raise :class:`ConfigError` with a clear message for values that cannot work."""
    d, t = cfg.data, cfg.train
    if d.task not in TASKS:
        raise ConfigError(f"data.task must be one of {TASKS}, got '{d.task}'")
    if d.source not in SOURCES:
        raise ConfigError(f"data.source must be one of {SOURCES}, got '{d.source}'")
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
    if d.eval_count < 1:
        raise ConfigError("data.eval_count must be >= 1")
    if t.batch_size < 1 or t.epochs < 1:
        raise ConfigError("train.batch_size and train.epochs must be >= 1")
    if t.steps_per_epoch is not None and t.steps_per_epoch < 1:
        raise ConfigError("train.steps_per_epoch must be >= 1 (or null for one pass)")
    if t.pixel_loss not in ("mse", "l1"):
        raise ConfigError(f"train.pixel_loss must be 'mse' or 'l1', got '{t.pixel_loss}'")
    if t.adv_weight < 0 or t.pixel_weight < 0:
        raise ConfigError("train.adv_weight and train.pixel_weight must be >= 0")
    if not 0 <= t.label_smoothing < 0.5:
        raise ConfigError("train.label_smoothing must be in [0, 0.5)")
    if t.content_loss not in CONTENT_LOSSES:
        raise ConfigError(f"train.content_loss must be one of {CONTENT_LOSSES}, "
                          f"got '{t.content_loss}'")
    if t.content_extractor not in ("vgg19", "tiny-random"):
        raise ConfigError("train.content_extractor must be 'vgg19' or 'tiny-random', "
                          f"got '{t.content_extractor}'")
    if t.content_weight < 0 or t.pretrain_steps < 0:
        raise ConfigError("train.content_weight and train.pretrain_steps must be >= 0")
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
    if min(t.gp_weight, t.coarse_weight, t.mask_weight) < 0:
        raise ConfigError("train.gp_weight, train.coarse_weight and train.mask_weight "
                          "must be >= 0")
    if t.strategy not in STRATEGIES:
        raise ConfigError(f"train.strategy must be one of {STRATEGIES}, got '{t.strategy}'")
