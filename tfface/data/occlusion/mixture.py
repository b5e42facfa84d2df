"""Mixtures of generators: validation, configuration from the data config, and
:func:`occlude`, which damages one face with a generator drawn from a mixture."""

from __future__ import annotations

from typing import Mapping, Sequence

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.celeba_c import noise_values
from tfface.data.occlusion.core import (FACTORIES, FILLS, OCCLUSION_IDS, OCCLUSIONS, Occluder,
                                        _check_options, _fill_for, _split)


def check_mixture(mixture: Mapping[str, float]) -> dict[str, float]:
    """Validate a ``{generator name: probability}`` mixture; return it normalized,
    without zero-probability entries, in sorted name order.

    Raises:
        ValueError: unknown names (the message lists the valid ones), negative
            probabilities or a non-positive sum.
    """
    unknown = sorted(set(mixture) - set(OCCLUSIONS))
    if unknown:
        raise ValueError(
            f"unknown occlusion generator(s) {unknown}; "
            f"valid names: {', '.join(sorted(OCCLUSIONS))}"
        )
    if any(float(p) < 0 for p in mixture.values()):
        raise ValueError(f"occlusion probabilities must be >= 0, got {dict(mixture)}")
    total = sum(float(p) for p in mixture.values())
    if total <= 0:
        raise ValueError(f"occlusion probabilities must have a positive sum, got {dict(mixture)}")
    return {k: float(mixture[k]) / total for k in sorted(mixture) if float(mixture[k]) > 0}


def make_occlusion_fns(data_cfg, names: Sequence[str] | None = None) -> dict[str, Occluder]:
    """Configured generators for :func:`occlude`, built once per dataset.

    Reads ``data_cfg.occlusion_options[name]`` and, for the generators that need
    them, the folders ``data_cfg.mask_dir`` (``irregular``) and
    ``data_cfg.facemask_dir`` (``facemask`` templates). Folders are read here, once
    (NumPy/OpenCV), and kept as tensors at ``data_cfg.image_size``; the per-element
    ops only pick and transform them with TF ops.

    Args:
        data_cfg: a :class:`tfface.config.DataConfig` (or anything with its fields).
        names: generators to build; default: every name with a positive probability
            in ``data_cfg.occlusions`` or ``data_cfg.eval_occlusions``.

    Returns:
        ``{name: Occluder}``.

    Raises:
        ValueError: an unknown generator or option, ``irregular`` without
            ``mask_dir``, or a folder that is missing, empty or malformed (the
            message names it).
    """
    if names is None:
        names = [k for k, p in dict(data_cfg.occlusions or {}).items() if float(p) > 0]
        names += [
            k for k, p in dict(data_cfg.eval_occlusions or {}).items() if float(p) > 0
        ]
    names = sorted(set(names))
    check_mixture({n: 1.0 for n in names})
    all_options = dict(getattr(data_cfg, "occlusion_options", None) or {})
    unknown = sorted(set(all_options) - set(OCCLUSIONS))
    if unknown:
        raise ValueError(
            f"data.occlusion_options names unknown generator(s) {unknown}; "
            f"valid names: {', '.join(sorted(OCCLUSIONS))}"
        )
    out = {}
    for name in names:
        options = dict(all_options.get(name) or {})
        if name in FACTORIES:
            out[name] = FACTORIES[name](options, data_cfg)
        else:
            _check_options(name, options, {"fill"})
            out[name] = Occluder(OCCLUSIONS[name], _fill_for(name, options, FILLS.get(name)))
    return out


def default_occluders(names: Sequence[str]) -> dict[str, Occluder]:
    """Registry defaults (no options, no folders) for ``names``."""
    return {n: Occluder(OCCLUSIONS[n], FILLS.get(n)) for n in names}


def occlude(
    image,
    landmarks,
    seed,
    mixture: Mapping[str, float],
    occluders: Mapping[str, Occluder] | None = None,
) -> dict[str, tf.Tensor]:
    """Damage one face with a generator drawn from ``mixture``.

    Args:
        image: uint8 (or float in [0, 255]) ``[S, S, 3]`` with a static side ``S``.
        landmarks: float32 ``[5, 2]`` (x, y fractions).
        seed: int tensor ``[2]``; the generator choice, the mask and the fill use
            independent seeds split from it.
        mixture: ``{generator name: probability}`` (normalized here).
        occluders: configured generators (:func:`make_occlusion_fns`), at least one per
            name of ``mixture``; default: the registry's (no options, no folders).

    Returns:
        dict with ``occluded`` (float32 ``[S, S, 3]`` in [0, 255]:
        ``image * (1 - mask) + fill * mask``; the default fill is :func:`noise_fill`'s
        distribution drawn for the hole pixels only: the ``k``-th of ``K`` hole pixels
        in row-major order gets ``noise_values(fill_seed, K)[k]``; an occluder's own
        fill is called with the mask's seed), ``mask`` (float32
        ``[S, S, 1]``, 1 = hole) and ``occlusion`` (int32 id from :data:`OCCLUSION_IDS`).
    """
    probs = check_mixture(mixture)
    names = list(probs)
    if occluders is None:
        occluders = default_occluders(names)
    missing = sorted(set(names) - set(occluders))
    if missing:
        raise ValueError(f"occlude: no configured generator for {missing} (make_occlusion_fns)")
    image = tf.convert_to_tensor(image)
    size = image.shape[0]
    if size is None or image.shape[1] != size:
        raise ValueError(f"occlude needs a static square image shape, got {image.shape}")
    s_pick, s_mask, s_fill = _split(seed, 3)
    img = tf.cast(image, tf.float32)

    def branch(name):
        def fn():
            gen = occluders[name]
            mask = tf.ensure_shape(gen.mask(s_mask, size, landmarks), [size, size, 1])
            # Only hole pixels are filled: gather their coordinates once and scatter the
            # fill there. That skips drawing noise for the 80-90 % of pixels that keep
            # the image, and avoids broadcasting [S, S, 1] against [S, S, 3], which is
            # several times slower on CPU than these O(holes) ops.
            holes = tf.where(mask[:, :, 0] > 0.5)
            if gen.fill is None:
                values = noise_values(s_fill, tf.shape(holes)[0])
            else:
                values = tf.gather_nd(gen.fill(s_mask, size, img, landmarks), holes)
            occluded = tf.tensor_scatter_nd_update(img, holes, values)
            return occluded, mask, tf.constant(OCCLUSION_IDS[name], tf.int32)

        return fn

    if len(names) == 1:
        occluded, mask, occ_id = branch(names[0])()
    else:
        cum = tf.constant([sum(list(probs.values())[: i + 1]) for i in range(len(names) - 1)])
        u = tf.random.stateless_uniform([], s_pick)
        pick = tf.reduce_sum(tf.cast(u >= cum, tf.int32))
        occluded, mask, occ_id = tf.switch_case(pick, [branch(n) for n in names])
    occluded = tf.ensure_shape(occluded, [size, size, 3])
    mask = tf.ensure_shape(mask, [size, size, 1])
    return {"occluded": occluded, "mask": mask, "occlusion": occ_id}
