"""How a drawn occluder looks in a photo: fabrics, light from the photo, shading.

Shared by the photo-realistic occluders (:mod:`~tfface.data.occlusion.realmask`,
:mod:`~tfface.data.occlusion.wearables`, :mod:`~tfface.data.occlusion.hands`). Every
function is a pure, stateless TensorFlow op of its seed and arguments.

- :func:`fabric`: a fabric's colour field in face coordinates: plain (black, navy,
  grey, white, colours), stripes, checks, polka dots, florals (smooth-noise blobs
  with small flowers), camouflage and heather (melange), drawn along the face so a
  tilted face tilts its mask's pattern.
- :func:`photo_light`: the light of the photo the occluder is drawn into: its white
  point and colour cast (from the brightest pixels) and a coarse spatial gradient
  (from a 4x4 luminance map), so a white mask is grey in a dark photo and darker
  on the shadowed side of the face.
- :func:`rim_shade`, :func:`creases`, :func:`highlight`, :func:`lighting_gradient`:
  a rounded object darkens toward its outline; folds; specular highlights; a
  random smooth lighting gradient.
"""

from __future__ import annotations

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.core import _randint, _split

# Fabric colours (RGB). The dark ones are what photographed black / navy masks look like.
DARK_FABRICS = ((24, 24, 27), (38, 38, 42), (30, 36, 66), (52, 50, 54), (34, 44, 36),
                (92, 28, 40))
"""black, charcoal, navy, dark grey, dark olive, burgundy: luminance below
:data:`DARK_LUMINANCE`."""
LIGHT_FABRICS = (
    (232, 232, 230), (196, 198, 202), (124, 128, 134), (140, 186, 222), (226, 172, 186),
    (150, 36, 46), (44, 72, 150), (52, 112, 82), (196, 184, 158),
    (190, 150, 52), (98, 104, 64), (210, 110, 50), (120, 80, 140), (90, 160, 170),
)
"""white, light grey, grey, light blue, pink, red, royal blue, green, beige, mustard, olive,
orange, purple, teal: luminance at least :data:`DARK_LUMINANCE`."""
DARK_LUMINANCE = 70.0
"""BT.601 luma (levels) below which a plain colour counts as dark ("black" masks)."""
PALETTE = DARK_FABRICS + LIGHT_FABRICS
CAMO_PALETTES = (
    ((86, 94, 58), (60, 52, 38), (132, 120, 84), (34, 40, 28)),  # woodland
    ((196, 176, 136), (150, 120, 86), (110, 88, 64), (214, 200, 170)),  # desert
    ((128, 130, 134), (70, 72, 78), (186, 188, 190), (36, 36, 40)),  # urban
    ((40, 52, 84), (70, 90, 130), (24, 28, 44), (120, 140, 170)),  # navy
)

PATTERNS = ("plain", "stripes", "checks", "dots", "floral", "camouflage", "heather")
"""Fabric patterns of :func:`fabric`, by id."""
PATTERN_WEIGHTS = (0.45, 0.11, 0.1, 0.09, 0.09, 0.09, 0.07)
DARK_SHARE = 0.4
"""Share of plain fabrics drawn from :data:`DARK_FABRICS` (black masks fail most)."""


def _pick(seed, n: int) -> tf.Tensor:
    return _randint([], seed, 0, n - 1)


def palette_pick(seed, palette) -> tf.Tensor:
    """One colour (float32 ``[3]``) of ``palette`` (a tuple of RGB triples), uniformly."""
    return tf.gather(tf.constant(palette, tf.float32), _pick(seed, len(palette)))


def _weighted(seed, weights) -> tf.Tensor:
    logits = tf.math.log(tf.constant([weights], tf.float32))
    return tf.cast(tf.random.stateless_categorical(logits, 1, seed)[0, 0], tf.int32)


def smooth_noise(seed, size: int, cells: int) -> tf.Tensor:
    """Smooth value noise ``[S, S]`` (about zero mean, unit std): a ``cells``-square grid
    of uniform values, bicubic-upsampled to the image and standardized."""
    g = tf.random.stateless_uniform([1, cells, cells, 1], seed)
    x = tf.image.resize(g, [size, size], method="bicubic")[0, :, :, 0]
    m, v = tf.nn.moments(x, [0, 1])
    # rsqrt written out: graph rewriting turns x / sqrt(v) into x * rsqrt(v), which
    # rounds differently, and eager and Dataset.map must agree bit for bit
    return (x - m) * tf.math.rsqrt(v + 1e-6)


def fabric_choice(seed) -> tuple[tf.Tensor, tf.Tensor]:
    """``(pattern id, dark)`` of :func:`fabric` for ``seed`` without drawing it."""
    s_pat, s_dark = _split(tf.random.experimental.stateless_fold_in(seed, 0xFAB), 2)[:2]
    pattern = _weighted(s_pat, PATTERN_WEIGHTS)
    dark = tf.equal(pattern, 0) & (tf.random.stateless_uniform([], s_dark) < DARK_SHARE)
    return pattern, dark


def fabric(seed, a, b, size: int) -> tf.Tensor:
    """A fabric's colour (albedo, float32 ``[S, S, 3]`` in [0, 255]) at face coordinates
    ``(a, b)`` (eye distances): the pattern and darkness of :func:`fabric_choice`."""
    pattern, dark = fabric_choice(seed)
    s = _split(seed, 10)
    pal = tf.constant(PALETTE, tf.float32)
    n_dark, n = len(DARK_FABRICS), len(PALETTE)
    i = tf.where(dark, _pick(s[0], n_dark), n_dark + _pick(s[1], n - n_dark))
    # patterns: a ground from the whole palette, a second colour that differs from it
    i = tf.where(tf.equal(pattern, 0), i, _pick(s[2], n))
    j = (i + 1 + _pick(s[3], n - 1)) % n
    k = (j + 1 + _pick(s[4], n - 2)) % n
    k = tf.where(tf.equal(k, i), (k + 1) % n, k)
    c1, c2, c3 = tf.gather(pal, i), tf.gather(pal, j), tf.gather(pal, k)
    # whole levels: integer sums are exact in any order (graph rewriting may regroup
    # constant + random + constant, and eager and Dataset.map must agree bit for bit)
    jitter = tf.round(tf.random.stateless_uniform([3], s[5], -10.0, 10.0))
    c1 = tf.clip_by_value(c1 + jitter, 0.0, 255.0)
    ang = tf.random.stateless_uniform([], s[6], 0.0, 3.14159)
    period = tf.random.stateless_uniform([], s[7], 0.07, 0.22)
    u = a * tf.cos(ang) + b * tf.sin(ang)
    v = -a * tf.sin(ang) + b * tf.cos(ang)
    one = tf.ones_like(a)[:, :, None]

    def mix(w, x, y):  # w in [0, 1] → colour x..y
        return x * (1.0 - w[:, :, None]) + y * w[:, :, None]

    def plain():
        return c1 * one

    def stripes():
        duty = tf.random.stateless_uniform([], s[8], 0.3, 0.6)
        return mix(tf.cast(tf.math.floormod(u / period, 1.0) < duty, tf.float32), c1, c2)

    def checks():  # gingham / plaid: two stripe sets, the crossing darker
        su = tf.cast(tf.math.floormod(u / period, 1.0) < 0.5, tf.float32)
        sv = tf.cast(tf.math.floormod(v / period, 1.0) < 0.5, tf.float32)
        return mix(su * sv, mix(0.5 * (su + sv), c1, c2), c3 * 0.7 + c2 * 0.3)

    def dots():
        p = period * 1.3
        row = tf.floor(v / p)
        uu = u / p + 0.5 * tf.math.floormod(row, 2.0)  # staggered rows
        du, dv = tf.math.floormod(uu, 1.0) - 0.5, tf.math.floormod(v / p, 1.0) - 0.5
        r = tf.random.stateless_uniform([], s[8], 0.15, 0.32)
        return mix(tf.cast(du * du + dv * dv < r * r, tf.float32), c1, c2)

    def floral():  # smooth blobs (petals) in two colours, small flowers, leaves
        n1 = smooth_noise(s[8], size, 14)
        n2 = smooth_noise(s[9], size, 26)
        leaf = tf.constant([70.0, 110.0, 60.0])
        out = mix(tf.cast(n1 > 0.9, tf.float32), c1, c2)
        out = mix(tf.cast((n2 > 1.3) & (n1 <= 0.9), tf.float32), out, c3)
        return mix(tf.cast((n1 > 0.35) & (n1 < 0.55) & (n2 < -0.6), tf.float32), out, leaf)

    def camouflage():
        cp = tf.gather(tf.constant(CAMO_PALETTES, tf.float32), _pick(s[8], len(CAMO_PALETTES)))
        x = smooth_noise(s[9], size, 7) + 0.6 * smooth_noise(s[3], size, 15)
        band = tf.cast(x > -0.7, tf.int32) + tf.cast(x > 0.0, tf.int32) + tf.cast(x > 0.7, tf.int32)
        return tf.gather(cp, band)

    def heather():  # melange: fine fibres of two tones
        x = smooth_noise(s[8], size, max(size // 3, 4)) + 0.5 * smooth_noise(s[9], size, 12)
        return mix(tf.clip_by_value(0.5 + 0.25 * x, 0.0, 1.0), c1, 0.75 * c1 + 0.25 * c2)

    return tf.switch_case(pattern, [plain, stripes, checks, dots, floral, camouflage, heather])


# --------------------------------------------------------------------------- light


def luminance(rgb) -> tf.Tensor:
    # one reduction: graph rewriting reorders a three-term sum, and eager and Dataset.map
    # must agree bit for bit
    return tf.reduce_sum(rgb * tf.constant([0.299, 0.587, 0.114]), axis=-1)


def _percentile(values, q: float) -> tf.Tensor:
    """The ``q`` quantile of values in [0, 255], to the level (a 256-bin histogram: O(n)
    where a sort is O(n log n))."""
    hist = tf.histogram_fixed_width(values, [0.0, 256.0], nbins=256)
    cum = tf.cumsum(hist)
    need = tf.cast(tf.math.ceil(q * tf.cast(tf.size(values), tf.float32)), tf.int32)
    return tf.cast(tf.argmax(tf.cast(cum >= need, tf.int32)), tf.float32) + 0.5


def photo_light(image, size: int) -> dict[str, tf.Tensor]:
    """The light of the photo (float ``[S, S, 3]`` in [0, 255]) an occluder goes into.

    Returns ``exposure`` (scalar: the 97th-percentile luminance over 235, clipped to
    [0.3, 1.1], so an object drawn for a well-exposed photo is dimmed in a dark one),
    ``cast`` (``[3]``: the per-channel 97th percentiles over their largest, clipped
    to [0.8, 1]: a warm photo warms the object) and ``field`` (``[S, S]``: the 4x4
    area-averaged luminance, bilinear-upsampled, over its mean, to the power 0.4 and
    clipped to [0.7, 1.3]: the side of the face in shadow darkens the object there).
    """
    img = tf.cast(image, tf.float32)
    flat = tf.reshape(img, [size * size, 3])
    hi_c = tf.stack([_percentile(flat[:, c], 0.97) for c in range(3)])
    hi_l = _percentile(luminance(flat), 0.97)
    exposure = tf.clip_by_value(hi_l * (1 / 235.0), 0.3, 1.1)
    cast = tf.clip_by_value(hi_c / tf.maximum(tf.reduce_max(hi_c), 1.0), 0.8, 1.0)
    coarse = tf.image.resize(luminance(img)[None, :, :, None], [4, 4], method="area")
    fine = tf.image.resize(coarse, [size, size], method="bilinear")[0, :, :, 0]
    field = tf.clip_by_value(tf.pow(tf.maximum(fine, 1.0) / tf.maximum(tf.reduce_mean(fine), 1.0),
                                    0.4), 0.7, 1.3)
    return {"exposure": exposure, "cast": cast, "field": field}


def lighting_gradient(seed, a, b, lo: float = 0.08, hi: float = 0.3) -> tf.Tensor:
    """A smooth random key-light gradient ``[S, S]`` around 1 (amplitude ``lo``–``hi``
    per eye distance, any direction)."""
    s_ang, s_amp = _split(seed, 2)
    ang = tf.random.stateless_uniform([], s_ang, 0.0, 6.28318)
    amp = tf.random.stateless_uniform([], s_amp, lo, hi)
    # scalars multiplied together first: graph rewriting reorders a chain like
    # 0.6 * b * sin (to spare a broadcast), which would round differently than eager
    return tf.clip_by_value(1.0 + amp * (a * tf.cos(ang) + b * (0.6 * tf.sin(ang))), 0.55, 1.45)


def rim_shade(mask, size: int, depth) -> tf.Tensor:
    """Roundness ``[S, S]``: 1 deep inside ``mask`` (bool/float ``[S, S]``), down to
    ``1 - depth`` at its outline (a separable box blur of width ~``size / 14``)."""
    k = max(3, (size // 14) | 1)
    m = tf.cast(mask, tf.float32)[None, :, :, None]
    m = tf.nn.avg_pool2d(m, [1, k, 1, 1], 1, "SAME")
    m = tf.nn.avg_pool2d(m, [1, 1, k, 1], 1, "SAME")[0, :, :, 0]
    inner = tf.clip_by_value(2.0 * m - 1.0, 0.0, 1.0)
    return 1.0 - depth * tf.square(1.0 - inner)


def creases(seed, a, b, count_max: int = 4, strength: float = 0.22) -> tf.Tensor:
    """0–``count_max`` fold lines ``[S, S]`` (around 1): a dark crease with a lit
    ridge beside it, random angles and positions within an eye distance of the mouth."""
    s_n, s_ang, s_off, s_w, s_str = _split(seed, 5)
    n = count_max
    count = _randint([], s_n, 0, count_max)
    ang = tf.random.stateless_uniform([n], s_ang, 0.0, 3.14159)
    off = tf.random.stateless_uniform([n], s_off, -0.8, 0.8)
    w = tf.random.stateless_uniform([n], s_w, 0.02, 0.06)
    st = tf.random.stateless_uniform([n], s_str, 0.4, 1.0) * strength
    on = tf.cast(tf.range(n) < count, tf.float32)
    t = (a[None] * tf.cos(ang)[:, None, None] + (b[None] - 1.0) * tf.sin(ang)[:, None, None]
         - off[:, None, None]) / w[:, None, None]
    prof = -tf.exp(-tf.square(t)) + 0.45 * tf.exp(-tf.square(t - 1.8))
    return 1.0 + tf.reduce_sum(prof * (st * on)[:, None, None], axis=0)


def highlight(a, b, a0, b0, ra, rb, amp) -> tf.Tensor:
    """A soft specular spot ``[S, S]`` (levels) of peak ``amp`` at ``(a0, b0)``."""
    # times the reciprocal: a division by a constant is rewritten so in graphs, and eager
    # and Dataset.map must agree bit for bit
    return amp * tf.exp(-tf.square((a - a0) * (1.0 / ra)) - tf.square((b - b0) * (1.0 / rb)))


def finish(albedo, shade, spec, light, seed, size: int, grain: float = 4.0) -> tf.Tensor:
    """Albedo × shading × the photo's light + specular light + fabric grain, in [0, 255]."""
    # the scalar exposure joins the [3] cast, not a chain of [S, S] products: graph
    # rewriting reorders such chains, and eager and Dataset.map must agree bit for bit
    field = light["field"]
    tint = light["cast"] * light["exposure"]
    rgb = (albedo * (shade * field)[:, :, None] + (spec * field)[:, :, None]) * tint
    rgb += tf.random.stateless_uniform([size, size, 1], seed, -grain, grain)
    return tf.clip_by_value(rgb, 0.0, 255.0)
