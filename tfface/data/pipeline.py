"""The tf.data pipeline: clean faces from a source → training/eval pairs in [-1, 1].

:func:`make_dataset` is the one way to get model-ready batches; calibration data for
TFLite quantization (:func:`representative_batches`) and evaluation come from it
too, so every consumer sees identically synthesized and preprocessed inputs.

Determinism: the source stream is reproducible (it shuffles statelessly per epoch),
and every random choice of synthesis uses a seed derived from
``(cfg.data.seed, split, element index)`` (:func:`element_seed`), so the eval split
is identical bit for bit across calls and a resumed training run continues the
stream without replaying it. No shuffle buffer is added here.

Super-resolution inputs come from :func:`tfface.data.degrade.degrade`. With
``cfg.data.data_service`` set, synthesis runs on the workers of a tf.data service
(see :func:`_through_service` and ``docs/data_service.md``): each element is the same
as locally, train order may differ slightly, eval batches are identical.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Iterator

import numpy as np

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.config import Config
from tfface.data import degrade as deg
from tfface.data import occlusion as occ
from tfface.data import sources as src
from tfface.data import sr_crop
from tfface.data.sources.base import _tf_square_resize

logger = logging.getLogger(__name__)

SPLITS = ("train", "eval")
SPLIT_SALT = {"train": 0x7472, "eval": 0x6576}
"""Mixed into element seeds so train and eval synthesis never share random streams."""


def element_seed(global_seed: int, split: str, index) -> tf.Tensor:
    """Stateless seed (int64 ``[2]``) of one element: fold ``index`` into
    ``(global_seed, split salt)``."""
    base = tf.constant([int(global_seed), SPLIT_SALT[split]], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


def model_input_key(cfg: Config) -> str:
    """Name of the element field a model of ``cfg.data.task`` takes as input."""
    return "lr" if cfg.data.task == "sr" else "occluded"


def _to_unit(x) -> tf.Tensor:
    """[0, 255] → [-1, 1] (float32)."""
    return tf.cast(x, tf.float32) / 127.5 - 1.0


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")


def make_dataset(
    cfg: Config,
    split: str,
    *,
    batch_size: int | None = None,
    start_step: int = 0,
    drop_remainder: bool | None = None,
    source=None,
    shard: tuple[int, int] | None = None,
    service_job: str | None = None,
) -> tf.data.Dataset:
    """Batches of model-ready faces.

    Args:
        cfg: the run's config (``cfg.data`` chooses source, size, task, occlusion mixture
            and seed; ``cfg.train.batch_size`` is the default batch size).
        split: ``"train"`` (infinite, reproducible) or ``"eval"`` (finite, fixed order).
        batch_size: defaults to ``cfg.train.batch_size``.
        start_step: train only: skip this many batches of the stream without reading
            them (the source starts at element ``start_step * batch_size``), so a
            resumed run continues where it stopped.
        drop_remainder: defaults to True for train and False for eval.
        source: the :class:`~tfface.data.sources.FaceSource` of ``cfg.data`` when the
            caller already built it (default: built here).
        shard: train only: ``(num_shards, shard_id)`` of a multi-worker run, where
            ``batch_size`` is the per-worker batch. Global batch ``s`` is split into
            ``num_shards`` consecutive slices and this shard gets slice ``shard_id``
            (element ``i`` belongs to shard ``(i // batch_size) % num_shards``), so
            the workers' batches together are exactly the one-process batch of
            ``num_shards * batch_size`` faces. Other shards' elements are dropped
            before they are read or decoded. Ignored with the tf.data service, which
            hands each element to one worker itself (see ``service_job``).
        service_job: with ``cfg.data.data_service``: the name of a shared tf.data
            service job; every consumer naming the same job receives a disjoint part of
            one stream (multi-worker training). None: a job of this consumer only.

    Returns:
        A dataset of dicts. Inpainting: ``clean`` and ``occluded`` (float32
        ``[B, S, S, 3]`` in [-1, 1]), ``mask`` (float32 ``[B, S, S, 1]``, 1 = hole),
        ``occlusion`` (int32 ``[B]``, ids of :data:`tfface.data.occlusion.OCCLUSION_IDS`)
        and ``index`` (int64 ``[B]``). Super-resolution: ``clean``, ``lr`` (float32
        ``[B, S/scale, S/scale, 3]`` in [-1, 1], synthesized by
        :func:`tfface.data.degrade.degrade` from ``cfg.data.degradation``), ``index``
        and, when ``cfg.data.lr_up``, ``lr_up`` (``lr`` bicubic-upsampled to
        ``[B, S, S, 3]``, in [-1, 1]).

    Raises:
        ValueError: bad split/arguments; SR: ``scale`` not in (2, 3, 4), ``image_size``
            not divisible by it, unknown downscale method or degradation options.
    """
    _check_split(split)
    d = cfg.data
    batch_size, keep, drop_remainder = _stream_args(
        cfg, split, batch_size, start_step, drop_remainder, shard)
    if d.task == "sr":
        synth, normalize = _sr_synthesis(d, split)
    elif d.task == "inpaint":
        synth, normalize = _inpaint_synthesis(d, split)
    else:
        raise ValueError(f"data.task must be 'inpaint' or 'sr', got '{d.task}'")

    # A caller building several datasets passes its source: a folder is scanned once.
    source = source if source is not None else src.make_source(d)
    if d.task == "sr" and split == "train" and d.sr_crop:
        source = _crop_source(d, source)
    shards = int(shard[0]) if shard is not None else 1
    start = start_step * batch_size * shards if split == "train" else 0
    if d.data_service:
        ds = _through_service(source, split, start, synth, d.data_service, job_name=service_job)
    else:
        ds = source.dataset(split, start=start, keep=keep)
        ds = ds.map(synth, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    # [0, 255] → [-1, 1] once per batch: fewer, larger ops than per element, and the
    # clean image travels through batching as uint8 (a quarter of the bytes).
    ds = ds.map(normalize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _stream_args(cfg: Config, split: str, batch_size: int | None, start_step: int,
                 drop_remainder: bool | None, shard: tuple[int, int] | None):
    """:func:`make_dataset`'s stream arguments checked and defaulted:
    ``(batch_size, keep, drop_remainder)``, where ``keep`` is the shard's element filter
    (``fn(index) -> bool tensor``) or None."""
    batch_size = int(batch_size or cfg.train.batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    if start_step and split != "train":
        raise ValueError("start_step is only meaningful for the train split")
    keep = None
    if shard is not None:
        if split != "train":
            raise ValueError("shard is only meaningful for the train split")
        num_shards, shard_id = int(shard[0]), int(shard[1])
        if num_shards < 1 or not 0 <= shard_id < num_shards:
            raise ValueError(f"shard must be (num_shards >= 1, 0 <= shard_id < num_shards), "
                             f"got {shard}")
        if num_shards > 1:
            per, n_sh, sid = tf.constant(batch_size, tf.int64), num_shards, shard_id

            def keep(index):
                return tf.equal((tf.cast(index, tf.int64) // per) % n_sh, sid)
    if drop_remainder is None:
        drop_remainder = split == "train"
    return batch_size, keep, drop_remainder


CROP_SALT = 0x6372
"""Folded into an element's seed for its ``data.sr_crop`` window (the degradation keeps
the element seed itself)."""


def _crop_source(d, source):
    """The source of an SR train split with ``data.sr_crop``: faces read at its
    ``source_size`` (``source`` itself when it already is)."""
    size = sr_crop.resolve_crop(d.sr_crop)["source_size"]
    if getattr(source, "image_size", None) == size:
        return source
    return src.make_source(dataclasses.replace(d, image_size=size))


def _sr_synthesis(d, split: str):
    """``(synth, normalize)`` of the super-resolution task: per element, ``lr`` (and
    ``lr_up``) degraded from the clean face (train with ``data.sr_crop``: from a zoomed
    random crop of it, :mod:`tfface.data.sr_crop`); per batch, the [-1, 1] scaling."""
    size = int(d.image_size)
    scale = int(d.scale)
    if scale not in deg.SCALES:
        raise ValueError(f"data.scale must be one of {deg.SCALES}, got {d.scale}")
    if size % scale:
        raise ValueError(
            f"data.image_size ({size}) must be divisible by data.scale ({scale})"
        )
    if d.sr_downscale not in deg.DOWNSCALE_METHODS:
        raise ValueError(
            f"data.sr_downscale must be one of {deg.DOWNSCALE_METHODS}, got '{d.sr_downscale}'"
        )
    options = deg.resolve_options(d.degradation, d.degradation_options)
    crop = sr_crop.resolve_crop(d.sr_crop) if split == "train" else None
    lr_up = bool(d.lr_up)

    def synth(el):
        index = tf.cast(el["index"], tf.int64)
        seed = element_seed(d.seed, split, index)
        if crop is None:
            image = tf.ensure_shape(el["image"], [size, size, 3])
            lr = deg.degrade(image, seed, d, options=options)
        else:
            face = tf.ensure_shape(el["image"], [crop["source_size"]] * 2 + [3])
            patch = sr_crop.random_crop(
                face, tf.random.experimental.stateless_fold_in(seed, CROP_SALT), size, crop)
            image = tf.cast(tf.round(patch), tf.uint8)
            lr = deg.degrade(image, seed, d, options=options, methods=crop["downscale"])
        out = {"clean": image, "lr": lr, "index": index}
        if lr_up:
            out["lr_up"] = deg.upscale(lr, size)
        return out

    def normalize(batch):
        out = {**batch, "clean": _to_unit(batch["clean"]), "lr": _to_unit(batch["lr"])}
        if lr_up:
            out["lr_up"] = _to_unit(batch["lr_up"])
        return out

    return synth, normalize


def _inpaint_synthesis(d, split: str):
    """``(synth, normalize)`` of the inpainting task: per element, a damage drawn from
    the split's occlusion mixture; per batch, the [-1, 1] scaling."""
    size = int(d.image_size)
    mixture = d.occlusions if split == "train" else (d.eval_occlusions or d.occlusions)
    mixture = occ.check_mixture(mixture)
    # Folders (irregular masks, face-mask templates) are read here, once.
    occluders = occ.make_occlusion_fns(d, names=list(mixture))

    def synth(el):
        image = tf.ensure_shape(el["image"], [size, size, 3])
        index = tf.cast(el["index"], tf.int64)
        out = occ.occlude(
            image, el["landmarks"], element_seed(d.seed, split, index), mixture, occluders
        )
        return {
            "clean": image,
            "occluded": out["occluded"],
            "mask": out["mask"],
            "occlusion": out["occlusion"],
            "index": index,
        }

    def normalize(batch):
        return {
            **batch,
            "clean": _to_unit(batch["clean"]),
            "occluded": _to_unit(batch["occluded"]),
        }

    return synth, normalize


# --------------------------------------------------------------------------- tf.data service

SERVICE_EVAL_LIMIT = 4096
"""Largest eval split sent through the tf.data service (it is reordered in memory)."""


def _check_service_address(address: str) -> str:
    if not isinstance(address, str) or not address.startswith("grpc://") or ":" not in address[7:]:
        raise ValueError(
            f"data.data_service must look like grpc://HOST:PORT (the dispatcher), got {address!r}"
        )
    return address


def _random_access(source, split: str):
    """``fn(index) -> element`` of ``source`` for ``split``: the element that
    ``source.dataset(split)`` yields with this ``index``, plus a validity flag.

    The tf.data service shards a dataset by its root, so the distributed dataset must
    start from a plain index range; this recomputes the source's own item order
    (``stateless_shuffle`` per epoch, see :mod:`tfface.data.sources`) per index.
    Folders are decoded with TensorFlow's decoders (no Python callback), so workers
    in other processes and hosts can run them; they must see the same paths.
    """
    n = source.num_examples(split)
    seed = int(source.cfg.seed)

    def item_of(index):
        if split == "eval":
            return index
        epoch, offset = index // n, index % n
        items = tf.range(n, dtype=tf.int64)
        if source.cfg.shuffle_files:
            items = tf.random.experimental.stateless_shuffle(
                items, seed=tf.stack([tf.constant(seed, tf.int64), epoch])
            )
        return items[offset]

    if isinstance(source, src.FolderSource):
        files = source.train_files if split == "train" else source.eval_files
        paths = tf.constant([os.path.join(source.root, f) for f in files])
        size = source.image_size
        landmarks = tf.constant(src.CANONICAL_LANDMARKS)

        def load(index):
            data = tf.io.read_file(tf.gather(paths, item_of(index)))
            img = tf.io.decode_image(data, channels=3, expand_animations=False)
            img, _, _ = _tf_square_resize(img, size)
            return {"image": img, "landmarks": landmarks, "index": index}, True

        return load
    if isinstance(source, src.SyntheticSource):
        # Rendering is an OpenCV callback (tf.numpy_function): it only runs on workers
        # inside this process (tests, demos), never on other hosts.
        logger.warning(
            "data.data_service with the synthetic source: faces are drawn by a Python "
            "callback that only workers started in this process can run; use a folder "
            "of photos (--data-dir) with remote workers"
        )
        render = source._render(0 if split == "train" else 1)
        return lambda index: (render(index, item_of(index)), True)
    raise ValueError(
        f"data.data_service supports the folder and synthetic sources, not '{source.name}' "
        "(TFDS records cannot be addressed by index); copy the images to a folder"
    )


def _first(a, b):
    return a


def _second(a, b):
    return b


def _sort_by_index(batch):
    order = tf.argsort(batch["index"])
    return {k: tf.gather(v, order) for k, v in batch.items()}


def _through_service(source, split: str, start: int, synth, address: str,
                     job_name: str | None = None) -> tf.data.Dataset:
    """Synthesis of ``split`` run by the tf.data service at ``address``.

    The distributed dataset is ``range(start, ∞)`` (train) or ``range(n)`` (eval) of
    element indices → source element → ``synth``; its root is split *dynamically*
    (``ShardingPolicy.DYNAMIC``): the dispatcher hands each index to one worker, so
    every element is synthesized exactly once (unless a worker dies mid-task) and the
    workers share the load whatever their number. Every element carries its own
    ``index`` and is synthesized from the seed of that index, so its content is the
    same as locally; only the arrival order depends on the workers' timing:

    * train: batches hold the same elements as the local stream, in an order that
      may differ slightly (about a batch at most in practice);
    * eval: the client collects the whole split, sorts it by ``index`` and re-batches
      it, so eval batches are identical to the local ones (the split is small; larger
      than :data:`SERVICE_EVAL_LIMIT` elements is refused).

    ``job_name`` (train): consumers that name the same job share it, so the workers of
    a multi-worker run together receive each element of the stream once.
    """
    address = _check_service_address(address)
    if split == "eval":
        n = int(source.num_examples("eval"))
        if n > SERVICE_EVAL_LIMIT:
            raise ValueError(
                f"the eval split ({n} faces) is too large to reorder through the tf.data "
                f"service (limit {SERVICE_EVAL_LIMIT}); lower data.eval_count or unset "
                "data.data_service for evaluation"
            )
        root = tf.data.Dataset.range(n)
    else:
        root = tf.data.Dataset.range(int(start), np.iinfo(np.int64).max)
    load = _random_access(source, split)
    ds = root.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(_second).map(_first)
    ds = ds.map(synth, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    svc = tf.data.experimental.service
    ds = ds.apply(svc.distribute(processing_mode=svc.ShardingPolicy.DYNAMIC, service=address,
                                 job_name=job_name if split == "train" else None))
    if split == "eval":
        # One batch of the whole split (≤ SERVICE_EVAL_LIMIT elements), sorted by index.
        ds = ds.batch(SERVICE_EVAL_LIMIT).map(_sort_by_index).unbatch()
    return ds


MIN_REPRESENTATIVE = 100


def representative_batches(
    cfg: Config, n: int = 200, split: str = "train", *, allow_small: bool = False
) -> Iterator[np.ndarray]:
    """Model inputs for TFLite calibration: ``n`` float32 arrays ``[1, S', S', 3]``.

    They come from :func:`make_dataset` (real faces, synthesized and normalized exactly
    as in training, never random tensors) and are reproducible: the same config gives
    the same ``n`` inputs. The input is ``occluded`` for inpainting and ``lr`` for
    super-resolution (:func:`model_input_key`). Use with the TFLite converter as
    ``converter.representative_dataset = lambda: ([x] for x in representative_batches(cfg))``.

    Raises:
        ValueError: ``n < 100`` (too few images for stable int8 calibration) unless
            ``allow_small``; or ``split == "eval"`` with ``n > cfg.data.eval_count``.
    """
    _check_split(split)
    if n < 1 or (n < MIN_REPRESENTATIVE and not allow_small):
        raise ValueError(
            f"representative data needs at least {MIN_REPRESENTATIVE} images for stable int8 "
            f"calibration, got n={n} (pass allow_small=True only in tests)"
        )
    if split == "eval" and n > cfg.data.eval_count:
        raise ValueError(
            f"the eval split holds {cfg.data.eval_count} faces, fewer than n={n}; "
            f"use split='train' or a larger data.eval_count"
        )
    key = model_input_key(cfg)
    ds = make_dataset(cfg, split, batch_size=1, drop_remainder=False).take(n)
    return (el[key].numpy() for el in ds)
