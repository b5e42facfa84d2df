"""The occluder segmenter's training data: real faces damaged by the occlusion synthesis.

Faces come from a folder of aligned crops (e.g. faces-train), damaged by the project's
occlusion synthesis (face masks, sunglasses, eye bars, boxes/noise patches as
object-like occluders, irregular holes, hands in the face's own skin), with a small
random similarity jitter applied to the face and its mask alike (restore's crops are
aligned by detected landmarks, never perfectly), camera-like changes, and a share of
undamaged faces (``clean_fraction``; the mask must then be empty). Occluders are
recoloured by chance (``photometric``), except the skin-toned ``skin_hand``.
:func:`segmenter_dataset` is the one way to these batches.
"""

from __future__ import annotations

import math

import numpy as np

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf

from tfface.segmenter.model import SegmenterConfig, training_mixture


def _data_cfg(cfg: SegmenterConfig, data_dir: str, mixture: dict[str, float]):
    from tfface.config import Config

    c = Config()
    c.data.source = "folder"
    c.data.data_dir = data_dir
    c.data.image_size = int(cfg.image_size)
    c.data.task = "inpaint"
    c.data.occlusions = dict(mixture)
    c.data.eval_occlusions = dict(mixture)
    c.data.mask_dir = cfg.mask_dir
    c.data.facemask_dir = cfg.facemask_dir
    # Object-like occluders: flat-coloured boxes (a hand, a phone, a cup) as well as
    # the noise-filled CelebA-C patches.
    c.data.occlusion_options = {"boxes": {"fill": "solid"}}
    if cfg.facemask_dir:
        # Half photographed templates, half procedural masks (pleated, cloth, N95):
        # with templates only, a drawn pleated mask was not recognised as one.
        c.data.occlusion_options["facemask"] = {"template_proba": 0.5}
        if any(n in cfg.occlusions for n in ("realmask", "scarf", "hair")):
            # A photo-like run: 'facemask' draws only the training families' frontal
            # templates too, so realmask_unseen's (KN95, cloth) stay unseen.
            from tfface.data.occlusion import available_templates, split_templates

            train, _ = split_templates(available_templates(cfg.facemask_dir))
            c.data.occlusion_options["facemask"]["templates"] = [
                n for n in train if not n.endswith(("_left", "_right"))]
    c.data.seed = int(cfg.seed)
    c.data.min_image_side = 32
    c.train.batch_size = int(cfg.batch_size)
    return c


def _jitter(images, masks, seed, cfg: SegmenterConfig):
    """The same random similarity transform on each face and its mask (batch-wise)."""
    b = tf.shape(images)[0]
    s = float(cfg.image_size)
    u = tf.random.stateless_uniform([b, 4], seed, -1.0, 1.0)
    ang = u[:, 0] * math.radians(cfg.jitter_degrees)
    sc = 1.0 + u[:, 1] * cfg.jitter_scale
    tx, ty = u[:, 2] * cfg.jitter_shift * s, u[:, 3] * cfg.jitter_shift * s
    c = s / 2.0
    # Output pixel p samples input at A p + t (inverse map), a rotation/scale about the center.
    a0, a1 = tf.cos(ang) / sc, -tf.sin(ang) / sc
    b0, b1 = tf.sin(ang) / sc, tf.cos(ang) / sc
    t0 = c - a0 * c - a1 * c + tx
    t1 = c - b0 * c - b1 * c + ty
    zeros = tf.zeros_like(a0)
    tr = tf.stack([a0, a1, t0, b0, b1, t1, zeros, zeros], axis=1)
    shape = tf.shape(images)[1:3]
    img = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tr, output_shape=shape, interpolation="BILINEAR",
        fill_mode="REFLECT", fill_value=0.0)
    msk = tf.raw_ops.ImageProjectiveTransformV3(
        images=masks, transforms=tr, output_shape=shape, interpolation="NEAREST",
        fill_mode="REFLECT", fill_value=0.0)
    return img, msk


def _recolor_occluder(occluded, clean, cover, seed, p: float):
    """With chance ``p``: the occluder's pixels (``cover`` > 0.5) get another hue and
    brightness, so the segmenter learns shapes over the face, not the palette. ``occluded``
    and ``clean`` are float RGB in 0..255."""
    s_on, s_hue, s_gain = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    on = tf.random.stateless_uniform([], s_on) < p
    hue = tf.random.stateless_uniform([], s_hue, -0.5, 0.5)
    gain = tf.random.stateless_uniform([], s_gain, 0.6, 1.3)
    shifted = tf.clip_by_value(tf.image.adjust_hue(occluded / 255.0, hue) * 255.0 * gain, 0, 255)
    inside = cover > 0.5
    recolored = tf.where(inside, shifted, occluded)
    return tf.where(on, recolored, occluded)


def _photometric(img, seed, p: float):
    """Camera-like changes of a whole face in [-1, 1], each with chance ``p``: Gaussian
    blur (sigma 0.3–1.2 px), sensor noise (sigma up to 0.04), JPEG (quality 35–90),
    contrast and brightness."""
    s = tf.unstack(tf.random.experimental.stateless_split(seed, 9))

    def chance(k):
        return tf.random.stateless_uniform([], s[k]) < p

    def blur(x):
        sigma = tf.random.stateless_uniform([], s[1], 0.3, 1.2)
        t = tf.range(-2.0, 3.0)
        k = tf.exp(-0.5 * tf.square(t / sigma))
        k = k / tf.reduce_sum(k)
        k2 = (k[:, None] * k[None, :])[:, :, None, None] * tf.ones([1, 1, 3, 1])
        xp = tf.pad(x[None], [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
        return tf.nn.depthwise_conv2d(xp, k2, [1, 1, 1, 1], "VALID")[0]

    x = tf.where(chance(0), blur(img), img)
    noise = tf.random.stateless_normal(tf.shape(x), s[3]) * \
        tf.random.stateless_uniform([], s[4], 0.0, 0.04)
    x = tf.where(chance(2), x + noise, x)
    x01 = tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)
    jpeg = tf.image.stateless_random_jpeg_quality(x01, 35, 90, tf.cast(s[6], tf.int32))
    x01 = tf.where(chance(5), jpeg, x01)
    c = tf.random.stateless_uniform([], s[8], 0.75, 1.25)
    mean = tf.reduce_mean(x01)
    shifted = tf.clip_by_value((x01 - mean) * c + mean + (c - 1.0) * 0.1, 0.0, 1.0)
    x01 = tf.where(chance(7), shifted, x01)
    return x01 * 2.0 - 1.0


def segmenter_dataset(cfg: SegmenterConfig, split: str = "train", *, start_step: int = 0,
                      data_dir: str | None = None, augment: bool | None = None,
                      mixture: dict[str, float] | None = None):
    """``(occluded [-1, 1], mask {0, 1})`` batches from the folder's faces.

    Occluders are placed at the landmarks of the measured template
    (:data:`tfface.framing.TEMPLATE`, the framing of these very crops), jittered per
    face by a few percent of the side; the folder source's own landmarks are those of
    CelebA's 178x218 aligned images, a framing these photos do not have (their eyes sit
    at y = 0.43 of the square, not 0.51).

    ``split="train"`` is infinite, with the similarity jitter and clean faces;
    ``"eval"`` is the folder source's fixed eval split (no augmentation unless
    ``augment``). ``mixture`` replaces :data:`SEGMENTER_MIXTURE` (e.g. one occluder
    for a per-occluder evaluation).
    """
    from tfface.data import occlusion as occ
    from tfface.data.pipeline import element_seed
    from tfface.data.sources import make_source
    from tfface.framing import TEMPLATE

    render = max(int(cfg.render_scale), 1)
    dcfg = _data_cfg(cfg, data_dir or cfg.data_dir, mixture or training_mixture(cfg))
    d = dcfg.data
    size = int(d.image_size)
    d.image_size = size * render
    rsize = size * render
    mixture = occ.check_mixture(dict(d.occlusions))
    occluders = occ.make_occlusion_fns(d, names=list(mixture))
    template = tf.constant(np.asarray(TEMPLATE, np.float32))
    skin_id = tf.constant(occ.OCCLUSION_IDS["skin_hand"], tf.int32)
    batch = int(cfg.batch_size)
    start = start_step * batch if split == "train" else 0
    augment = split == "train" if augment is None else augment

    def shrink(x):
        if render == 1:
            return x
        return tf.image.resize(x, [size, size], method="area")

    def synth(el):
        image = tf.ensure_shape(el["image"], [rsize, rsize, 3])
        index = tf.cast(el["index"], tf.int64)
        seed = element_seed(d.seed, split, index)
        s_lm, s_occ, s_aug, s_clean, s_ph = tf.unstack(
            tf.random.experimental.stateless_split(seed, 5))
        lm = template + tf.random.stateless_normal([5, 2], s_lm, stddev=0.012)
        out = occ.occlude(image, lm, s_occ, mixture, occluders)
        occluded = tf.cast(out["occluded"], tf.float32)
        cover = out["mask"]
        base = tf.cast(image, tf.float32)
        if augment:
            # skin-toned occluders keep the face's skin: recoloured, they would teach the
            # colour again, not the shape of skin in front of skin
            recolored = _recolor_occluder(occluded, base, cover, s_ph, cfg.photometric)
            occluded = tf.where(tf.equal(out["occlusion"], skin_id), occluded, recolored)
            if cfg.photo_conditions > 0:
                proba = [min(1.0, p * float(cfg.photo_conditions))
                         for p in occ.PHOTO_CONDITION_PROBA]
                (occluded, base), _ = occ.photo_conditions(
                    tf.random.experimental.stateless_fold_in(s_ph, 2), [occluded, base], proba)
        img = shrink(occluded) / 127.5 - 1.0
        msk = tf.cast(shrink(cover) > 0.5, tf.float32)
        if augment:
            img, msk = _jitter(img[None], msk[None], s_aug, cfg)
            clean = shrink(base) / 127.5 - 1.0
            clean, _ = _jitter(clean[None], msk, s_aug, cfg)
            keep = tf.random.stateless_uniform([], s_clean) < cfg.clean_fraction
            img = tf.where(keep, clean, img)[0]
            msk = tf.where(keep, tf.zeros_like(msk), msk)[0]
            img = _photometric(img, tf.random.experimental.stateless_fold_in(s_ph, 1),
                               cfg.photometric)
        return img, msk

    ds = make_source(d).dataset(split, start=start)
    ds = ds.map(synth, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=split == "train")
    return ds.prefetch(2)
