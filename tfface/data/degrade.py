"""Low-resolution synthesis for super-resolution: downscaling and realistic degradations.

Every function here is pure TensorFlow and *stateless*: random choices come from
``tf.random.stateless_*`` with seeds split from one element seed (int tensor ``[2]``),
so the same seed gives the same LR image eagerly, inside ``tf.function`` and inside
``Dataset.map(num_parallel_calls=...)``. Images are float32 in ``[0, 255]``
(``[H, W, 3]``); nothing needs network access.

Presets (``cfg.data.degradation``)
----------------------------------
``none``
    Clean downscale by ``cfg.data.scale`` with ``cfg.data.sr_downscale``: ``area``
    (box mean), ``bicubic`` (antialiased, like MATLAB ``imresize``/PIL, as in the
    SRGAN report) or ``bilinear`` (antialiased).
``classic``
    The classical first-order model ``y = JPEG((x ⊛ k)↓s + n)``: one blur (isotropic
    or anisotropic Gaussian), the downscale of ``none``, Gaussian or Poisson noise
    (color or gray) and JPEG, each with a probability. Ranges are Real-ESRGAN's first
    stage (below).
``realesrgan``
    The second-order degradation of Real-ESRGAN (Wang et al., "Real-ESRGAN: Training
    Real-World Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021, §3 and
    the released ``options/train_realesrnet_x4plus.yml``): the chain
    blur → random resize → noise → JPEG applied twice, then the final resize to the
    LR size combined with a sinc filter and JPEG in random order. Published ranges:

    =========================  =========================  =========================
    parameter                  first stage                second stage
    =========================  =========================  =========================
    blur probability           1.0                        0.8 (``second_blur_prob``)
    kernel size (odd)          7 – 21                     7 – 21
    kernel types (prob.)       iso .45, aniso .25, generalized iso .12, generalized
                               aniso .03, plateau iso .12, plateau aniso .03
    blur sigma                 0.2 – 3                    0.2 – 1.5
    rotation (aniso)           −π – π                     −π – π
    generalized β / plateau β  0.5 – 4 / 1 – 2            0.5 – 4 / 1 – 2
    sinc filter probability    0.1                        0.1
    resize up/down/keep        0.2 / 0.7 / 0.1            0.3 / 0.4 / 0.3
    resize factor              0.15 – 1.5                 0.3 – 1.2 (of the LR size)
    resize mode                area, bilinear, bicubic (uniform)
    Gaussian noise prob.       0.5 (else Poisson)         0.5
    Gaussian sigma (0–255)     1 – 30                     1 – 25
    Poisson scale              0.05 – 3                   0.05 – 2.5
    gray noise probability     0.4                        0.4
    JPEG quality               30 – 95                    30 – 95
    final sinc probability                                0.8
    =========================  =========================  =========================

    Two departures, both for small training crops: intermediate images are never
    smaller than :data:`MIN_SIDE` pixels (Real-ESRGAN trains on 256 px crops, where
    this never binds; a 64 px face at ×4 would otherwise shrink to 4 px), and the
    sharpened (USM) ground truth of Real-ESRGAN is not applied (``clean`` stays the
    photo).

``cfg.data.degradation_options`` overrides any entry of the preset's table
(:data:`CLASSIC`, :data:`REALESRGAN`), e.g. ``{"jpeg_range": [60, 95],
"blur_prob": 0.5}``; unknown keys are errors that list the valid ones.
Ranges are closed ``[lo, hi]`` pairs; ``kernel_size`` ranges hold odd sizes.

Faces at every scale: ``data.sr_crop`` (:mod:`tfface.data.sr_crop`) cuts zoomed random
crops of the faces before :func:`degrade`, whose ``methods`` then draws the LR kernel per
element.

Public ops: :func:`gaussian_kernel`, :func:`sinc_kernel`, :func:`blur`,
:func:`add_gaussian_noise`, :func:`add_poisson_noise`, :func:`jpeg`,
:func:`downscale`, :func:`upscale`, :func:`degrade`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.config import SCALES

__all__ = [
    "PRESETS",
    "CLASSIC",
    "REALESRGAN",
    "SCALES",
    "DOWNSCALE_METHODS",
    "MIN_SIDE",
    "KERNEL_SIZE",
    "resolve_options",
    "gaussian_kernel",
    "sinc_kernel",
    "blur",
    "add_gaussian_noise",
    "add_poisson_noise",
    "jpeg",
    "downscale",
    "upscale",
    "degrade",
]

DOWNSCALE_METHODS = ("area", "bicubic", "bilinear")
KERNEL_SIZE = 21
"""Side of every blur kernel tensor; smaller kernels are zero outside their support."""
MIN_SIDE = 12
"""Smallest side of an intermediate image of the random resizes (reflect padding of a
21-tap kernel needs more than 10 pixels)."""

_KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                 "plateau_aniso")

CLASSIC: dict[str, Any] = {
    "blur_prob": 1.0,
    "kernel_size": (7, 21),
    "kernel_prob": {"iso": 0.5, "aniso": 0.5},
    "blur_sigma": (0.2, 3.0),
    "noise_prob": 1.0,
    "gaussian_noise_prob": 0.5,
    "noise_range": (1.0, 30.0),
    "poisson_scale_range": (0.05, 3.0),
    "gray_noise_prob": 0.4,
    "jpeg_prob": 1.0,
    "jpeg_range": (30, 95),
}
"""Options of the ``classic`` preset (single order; Real-ESRGAN first-stage ranges)."""

_MIXED = {"iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03,
          "plateau_iso": 0.12, "plateau_aniso": 0.03}

REALESRGAN: dict[str, Any] = {
    # first stage
    "kernel_size": (7, 21),
    "kernel_prob": dict(_MIXED),
    "sinc_prob": 0.1,
    "blur_sigma": (0.2, 3.0),
    "betag_range": (0.5, 4.0),
    "betap_range": (1.0, 2.0),
    "resize_prob": (0.2, 0.7, 0.1),
    "resize_range": (0.15, 1.5),
    "gaussian_noise_prob": 0.5,
    "noise_range": (1.0, 30.0),
    "poisson_scale_range": (0.05, 3.0),
    "gray_noise_prob": 0.4,
    "jpeg_range": (30, 95),
    # second stage
    "second_blur_prob": 0.8,
    "kernel_size2": (7, 21),
    "kernel_prob2": dict(_MIXED),
    "sinc_prob2": 0.1,
    "blur_sigma2": (0.2, 1.5),
    "betag_range2": (0.5, 4.0),
    "betap_range2": (1.0, 2.0),
    "resize_prob2": (0.3, 0.4, 0.3),
    "resize_range2": (0.3, 1.2),
    "gaussian_noise_prob2": 0.5,
    "noise_range2": (1.0, 25.0),
    "poisson_scale_range2": (0.05, 2.5),
    "gray_noise_prob2": 0.4,
    "jpeg_range2": (30, 95),
    # final
    "final_sinc_prob": 0.8,
}
"""Options of the ``realesrgan`` preset (``train_realesrnet_x4plus.yml``)."""

PRESETS: dict[str, dict[str, Any] | None] = {"none": None, "classic": CLASSIC,
                                             "realesrgan": REALESRGAN}


def resolve_options(degradation: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """The option table of preset ``degradation`` with ``overrides`` applied.

    Raises:
        ValueError: unknown preset, unknown option key (the message lists the valid
            ones), unknown kernel type, or a malformed range.
    """
    if degradation not in PRESETS:
        raise ValueError(
            f"unknown degradation '{degradation}'; choose one of: {', '.join(PRESETS)}"
        )
    base = PRESETS[degradation]
    overrides = dict(overrides or {})
    if base is None:
        if overrides:
            raise ValueError(
                "data.degradation_options has no effect with degradation 'none' "
                f"(got {sorted(overrides)}); choose 'classic' or 'realesrgan'"
            )
        return {}
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(
            f"unknown degradation option(s) {unknown} for '{degradation}'; "
            f"valid keys: {', '.join(sorted(base))}"
        )
    opts = {**base, **overrides}
    for key, value in opts.items():
        if key.startswith("kernel_prob"):
            bad = sorted(set(value) - set(_KERNEL_TYPES))
            if bad or sum(float(p) for p in value.values()) <= 0:
                raise ValueError(
                    f"degradation option {key} must map kernel types ({', '.join(_KERNEL_TYPES)}) "
                    f"to probabilities with a positive sum, got {value}"
                )
        elif key.startswith("kernel_size"):
            lo, hi = (int(v) for v in value)
            if not (3 <= lo <= hi <= KERNEL_SIZE and lo % 2 and hi % 2):
                raise ValueError(f"degradation option {key} must be odd sizes in [3, 21], got {value}")
        elif key.endswith("_range") or key[:-1].endswith("_range") or key.startswith("blur_sigma"):
            if len(value) != 2 or float(value[0]) > float(value[1]):
                raise ValueError(f"degradation option {key} must be a [lo, hi] range, got {value}")
        elif key.startswith("resize_prob"):
            if len(value) != 3 or sum(value) <= 0:
                raise ValueError(f"degradation option {key} must be [up, down, keep], got {value}")
    return opts


# --------------------------------------------------------------------------- helpers


def _seeds(seed, n: int) -> list[tf.Tensor]:
    """``n`` independent int64 ``[2]`` seeds derived from ``seed``."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _uniform(seed, lo, hi) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, float(lo), float(hi))


def _bernoulli(seed, p) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed) < float(p)


def _choice(seed, probs) -> tf.Tensor:
    """Index drawn from (unnormalized) ``probs`` (int32 scalar)."""
    probs = [float(p) for p in probs]
    total = sum(probs)
    cum = tf.constant([sum(probs[: i + 1]) / total for i in range(len(probs) - 1)], tf.float32)
    u = tf.random.stateless_uniform([], seed)
    return tf.reduce_sum(tf.cast(u >= cum, tf.int32))


def _odd_size(seed, size_range) -> tf.Tensor:
    """A uniformly drawn odd kernel size in ``size_range`` (int32 scalar)."""
    lo, hi = (int(v) for v in size_range)
    k = tf.random.stateless_uniform([], seed, lo // 2, hi // 2 + 1, dtype=tf.int32)
    return 2 * k + 1


def _as_float(image) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(image), tf.float32)


def _quantize(x) -> tf.Tensor:
    return tf.round(tf.clip_by_value(x, 0.0, 255.0))


# --------------------------------------------------------------------------- kernels


def _grid(size: int) -> tuple[tf.Tensor, tf.Tensor]:
    r = tf.range(size, dtype=tf.float32) - (size - 1) / 2.0
    yy, xx = tf.meshgrid(r, r, indexing="ij")
    return xx, yy


def _support(kernel_size, size: int) -> tf.Tensor:
    """1 inside the centered ``kernel_size`` square of a ``size`` grid, else 0."""
    xx, yy = _grid(size)
    radius = (tf.cast(kernel_size, tf.float32) - 1.0) / 2.0
    return tf.cast((tf.abs(xx) <= radius) & (tf.abs(yy) <= radius), tf.float32)


def gaussian_kernel(
    sigma_x,
    sigma_y=None,
    theta=0.0,
    *,
    size: int = KERNEL_SIZE,
    kernel_size=None,
    beta=1.0,
    plateau: bool = False,
) -> tf.Tensor:
    """A normalized (bivariate, possibly rotated) Gaussian blur kernel.

    ``k(p) ∝ exp(-½ (pᵀ Σ⁻¹ p)^β)`` with ``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ``; ``β = 1``
    is the Gaussian, other ``β`` the generalized Gaussian; with ``plateau`` it is
    ``1 / (1 + (pᵀ Σ⁻¹ p)^β)`` (Real-ESRGAN's plateau kernel). Isotropic when
    ``sigma_y`` is None (``σy = σx``, no rotation).

    Args:
        sigma_x, sigma_y: standard deviations in pixels (scalars, may be tensors).
        theta: rotation in radians.
        size: side of the returned tensor (odd, static).
        kernel_size: odd support (may be a tensor); the kernel is zero outside the
            centered ``kernel_size`` square. Default: ``size``.
        beta: shape parameter (see above).
        plateau: plateau-shaped kernel instead of the (generalized) Gaussian.

    Returns:
        float32 ``[size, size]`` summing to 1.
    """
    sx = tf.cast(sigma_x, tf.float32)
    sy = sx if sigma_y is None else tf.cast(sigma_y, tf.float32)
    theta = tf.cast(0.0 if sigma_y is None else theta, tf.float32)
    xx, yy = _grid(size)
    c, s = tf.cos(theta), tf.sin(theta)
    # Coordinates in the kernel's principal axes: Σ⁻¹ quadratic form without a 2x2 inverse.
    u = c * xx + s * yy
    v = -s * xx + c * yy
    q = (u / sx) ** 2 + (v / sy) ** 2
    beta = tf.cast(beta, tf.float32)
    k = 1.0 / (1.0 + tf.pow(q, beta)) if plateau else tf.exp(-0.5 * tf.pow(q, beta))
    if kernel_size is not None:
        k *= _support(kernel_size, size)
    return k / tf.reduce_sum(k)


def sinc_kernel(cutoff, *, size: int = KERNEL_SIZE, kernel_size=None) -> tf.Tensor:
    """A normalized 2-D sinc (ideal circular low-pass) kernel with cutoff ``cutoff``
    (radians per pixel, ``≤ π``): ``ω J₁(ω r) / (2π r)``, as Real-ESRGAN's
    ``circular_lowpass_kernel``. Models ringing and overshoot artifacts.

    Returns:
        float32 ``[size, size]`` summing to 1 (zero outside ``kernel_size``).
    """
    w = tf.cast(cutoff, tf.float32)
    xx, yy = _grid(size)
    r = tf.sqrt(xx**2 + yy**2)
    safe_r = tf.where(r > 0, r, 1.0)
    k = w * tf.math.special.bessel_j1(w * safe_r) / (2.0 * math.pi * safe_r)
    k = tf.where(r > 0, k, w**2 / (4.0 * math.pi))
    if kernel_size is not None:
        k *= _support(kernel_size, size)
    return k / tf.reduce_sum(k)


def _random_kernel(seed, opts: Mapping[str, Any], suffix: str = "") -> tf.Tensor:
    """Real-ESRGAN's ``random_mixed_kernels`` (+ sinc with ``sinc_prob``), padded to 21."""
    s = _seeds(seed, 10)
    ksize = _odd_size(s[0], opts["kernel_size" + suffix])
    lo, hi = opts["blur_sigma" + suffix]
    sx = _uniform(s[1], lo, hi)
    sy = _uniform(s[2], lo, hi)
    theta = _uniform(s[3], -math.pi, math.pi)

    def beta(seed_, rng):
        # Real-ESRGAN: below or above 1 with equal probability.
        lo_, hi_ = (float(v) for v in rng)
        below = _uniform(seed_, lo_, min(1.0, hi_))
        above = _uniform(seed_, max(1.0, lo_), hi_)
        return tf.where(_bernoulli(_seeds(seed_, 1)[0], 0.5), below, above)

    bg = beta(s[4], opts.get("betag_range" + suffix, (1.0, 1.0)))
    bp = beta(s[5], opts.get("betap_range" + suffix, (1.0, 1.0)))
    probs = opts["kernel_prob" + suffix]
    names = [n for n in _KERNEL_TYPES if float(probs.get(n, 0)) > 0]
    builders = {
        "iso": lambda: gaussian_kernel(sx, kernel_size=ksize),
        "aniso": lambda: gaussian_kernel(sx, sy, theta, kernel_size=ksize),
        "generalized_iso": lambda: gaussian_kernel(sx, kernel_size=ksize, beta=bg),
        "generalized_aniso": lambda: gaussian_kernel(sx, sy, theta, kernel_size=ksize, beta=bg),
        "plateau_iso": lambda: gaussian_kernel(sx, kernel_size=ksize, beta=bp, plateau=True),
        "plateau_aniso": lambda: gaussian_kernel(sx, sy, theta, kernel_size=ksize, beta=bp,
                                                 plateau=True),
    }
    if len(names) == 1:
        kernel = builders[names[0]]()
    else:
        pick = _choice(s[6], [probs[n] for n in names])
        kernel = tf.switch_case(pick, [builders[n] for n in names])
    sinc_p = float(opts.get("sinc_prob" + suffix, 0.0))
    if sinc_p > 0:
        # Real-ESRGAN: wider cutoff range for large kernels.
        w_lo = tf.where(ksize < 13, math.pi / 3, math.pi / 5)
        omega = w_lo + (math.pi - w_lo) * tf.random.stateless_uniform([], s[7])
        kernel = tf.cond(
            _bernoulli(s[8], sinc_p),
            lambda: sinc_kernel(omega, kernel_size=ksize),
            lambda: kernel,
        )
    return tf.ensure_shape(kernel, [KERNEL_SIZE, KERNEL_SIZE]), ksize


# --------------------------------------------------------------------------- ops


def _conv(image, kernel, pad: int) -> tf.Tensor:
    """Depthwise convolution of ``[B, H, W, C]`` with one ``[k, k]`` kernel, reflect padded."""
    channels = image.shape[-1]
    x = tf.pad(image, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    w = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(x, w, strides=[1, 1, 1, 1], padding="VALID")


def blur(image, kernel, kernel_size=None) -> tf.Tensor:
    """Convolve an image with a ``[k, k]`` kernel (same for every channel), reflect padding.

    Args:
        image: float ``[H, W, C]`` or ``[B, H, W, C]`` (any range); H and W larger
            than half the kernel.
        kernel: float32 ``[k, k]``, k odd (e.g. from :func:`gaussian_kernel`).
        kernel_size: optional odd support (int or tensor) of a kernel that is zero
            outside its centered ``kernel_size`` square: only that part is convolved,
            which is up to 9× cheaper for a 7-tap kernel in a 21-tap tensor.

    Returns:
        float32, the shape of ``image``.
    """
    x = _as_float(image)
    batched = x.shape.rank == 4
    if not batched:
        x = x[None]
    kernel = tf.cast(kernel, tf.float32)
    k = kernel.shape[0]
    if kernel_size is None or isinstance(kernel_size, int):
        ks = k if kernel_size is None else int(kernel_size)
        off = (k - ks) // 2
        out = _conv(x, kernel[off : off + ks, off : off + ks], ks // 2)
    else:
        sizes = list(range(3, k + 1, 2))

        def branch(ks):
            off = (k - ks) // 2
            return lambda: _conv(x, kernel[off : off + ks, off : off + ks], ks // 2)

        idx = tf.clip_by_value((tf.cast(kernel_size, tf.int32) - 3) // 2, 0, len(sizes) - 1)
        out = tf.switch_case(idx, [branch(ks) for ks in sizes])
    out = tf.ensure_shape(out, x.shape)
    return out if batched else out[0]


def _noise_shape(image, gray) -> tf.Tensor:
    shape = tf.shape(image)
    return tf.where(tf.cast(gray, tf.bool), tf.concat([shape[:-1], [1]], 0), shape)


def add_gaussian_noise(image, seed, sigma, gray=False, clip: bool = True) -> tf.Tensor:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` (0–255 units).

    Args:
        image: float ``[H, W, C]`` in [0, 255].
        seed: int tensor ``[2]``.
        sigma: scalar (may be a tensor).
        gray: the same noise on every channel (luminance noise) instead of
            independent noise per channel (color noise); bool or bool tensor.
        clip: clip the result to [0, 255].
    """
    x = _as_float(image)
    noise = tf.random.stateless_normal(_noise_shape(x, gray), seed) * tf.cast(sigma, tf.float32)
    out = tf.ensure_shape(x + noise, x.shape)
    return tf.clip_by_value(out, 0.0, 255.0) if clip else out


def add_poisson_noise(image, seed, scale=1.0, gray=False, clip: bool = True) -> tf.Tensor:
    """Add Poisson (shot) noise, as Real-ESRGAN: ``scale · (P(256·x)/256 − x)`` on
    ``x = image / 255`` (256 photon levels, the count of an 8-bit image), in 0–255 units.

    Args:
        image: float ``[H, W, C]`` in [0, 255].
        seed: int tensor ``[2]``.
        scale: noise strength (Real-ESRGAN draws 0.05–3).
        gray: noise from the luminance (ITU-R 601), shared by all channels.
        clip: clip the result to [0, 255].
    """
    x = _as_float(image)
    levels = 256.0

    def sample(ref):
        lam = tf.clip_by_value(ref, 0.0, 255.0) / 255.0 * levels
        counts = tf.random.stateless_poisson(tf.shape(ref), seed, lam, dtype=tf.float32)
        return (counts / levels - lam / levels) * 255.0

    def gray_noise():
        lum = tf.reduce_sum(x * tf.constant([0.299, 0.587, 0.114]), -1, keepdims=True)
        return sample(lum)

    if isinstance(gray, bool):
        noise = gray_noise() if gray else sample(x)
    else:
        noise = tf.cond(tf.cast(gray, tf.bool), gray_noise, lambda: sample(x))
    out = x + noise * tf.cast(scale, tf.float32)
    return tf.clip_by_value(out, 0.0, 255.0) if clip else out


def jpeg(image, quality) -> tf.Tensor:
    """JPEG-compress and decode (4:2:0, libjpeg): deterministic for a given quality.

    Args:
        image: float ``[H, W, 3]`` in [0, 255] (clipped and rounded to 8 bits first).
        quality: int scalar 0–100 (may be a tensor, e.g. drawn statelessly).

    Returns:
        float32 ``[H, W, 3]`` with integer values in [0, 255].
    """
    x = tf.cast(_quantize(_as_float(image)), tf.uint8)
    out = tf.image.adjust_jpeg_quality(x, tf.cast(quality, tf.int32))
    return tf.ensure_shape(tf.cast(out, tf.float32), x.shape)


def _resize(image, size, method: str) -> tf.Tensor:
    """Resize a ``[H, W, C]`` float image to ``size`` (antialiased when shrinking)."""
    antialias = method != "area"
    return tf.image.resize(image, size, method=method, antialias=antialias)


def downscale(image, scale: int, method: str = "bicubic") -> tf.Tensor:
    """Shrink a square image by an integer factor (``64 → 32`` at ×2, SRGAN style).

    Args:
        image: uint8 or float ``[S, S, C]`` (or ``[B, S, S, C]``) in [0, 255], ``S``
            static and divisible by ``scale``.
        scale: 2, 3 or 4.
        method: ``area`` (mean of each ``scale × scale`` block), ``bicubic``
            (antialiased: the kernel widened by ``scale``, like MATLAB ``imresize``)
            or ``bilinear`` (antialiased, triangle filter).

    Returns:
        float32 ``[S/scale, S/scale, C]`` clipped to [0, 255] (not rounded).
    """
    if method not in DOWNSCALE_METHODS:
        raise ValueError(f"downscale method must be one of {DOWNSCALE_METHODS}, got '{method}'")
    x = _as_float(image)
    h, w = x.shape[-3], x.shape[-2]
    if h is None or w is None or h % scale or w % scale:
        raise ValueError(f"downscale needs a static size divisible by {scale}, got {x.shape}")
    out = _resize(x, [h // scale, w // scale], method)
    return tf.clip_by_value(out, 0.0, 255.0)


def upscale(image, size, method: str = "bicubic") -> tf.Tensor:
    """Enlarge ``[h, w, C]`` to ``size`` (int or ``[H, W]``), float32 clipped to [0, 255]:
    the ``lr_up`` input of models that refine an interpolated image (SRCNN, VDSR)."""
    size = [size, size] if isinstance(size, int) else list(size)
    out = tf.image.resize(_as_float(image), size, method=method)
    return tf.clip_by_value(out, 0.0, 255.0)


def _downscale_any(image, scale: int, methods, seed) -> tf.Tensor:
    """:func:`downscale` with one of ``methods`` (drawn from ``seed`` when several)."""
    if len(methods) == 1:
        return downscale(image, scale, methods[0])
    pick = tf.random.stateless_uniform([], seed, 0, len(methods), dtype=tf.int32)
    return tf.switch_case(pick, [lambda m=m: downscale(image, scale, m) for m in methods])


# --------------------------------------------------------------------------- chains


def _random_noise(image, seed, opts, suffix: str = "") -> tf.Tensor:
    s = _seeds(seed, 4)
    gray = _bernoulli(s[0], opts["gray_noise_prob" + suffix])

    def gaussian():
        lo, hi = opts["noise_range" + suffix]
        return add_gaussian_noise(image, s[2], _uniform(s[1], lo, hi), gray)

    def poisson():
        lo, hi = opts["poisson_scale_range" + suffix]
        return add_poisson_noise(image, s[2], _uniform(s[1], lo, hi), gray)

    p = float(opts["gaussian_noise_prob" + suffix])
    if p >= 1:
        return gaussian()
    if p <= 0:
        return poisson()
    return tf.cond(_bernoulli(s[3], p), gaussian, poisson)


def _random_jpeg(image, seed, quality_range) -> tf.Tensor:
    lo, hi = (int(v) for v in quality_range)
    q = tf.random.stateless_uniform([], seed, lo, hi + 1, dtype=tf.int32)
    return jpeg(image, q)


def _maybe(pred_seed, prob: float, fn, image) -> tf.Tensor:
    """``fn(image)`` with probability ``prob`` (no op when 0, no branch when 1)."""
    prob = float(prob)
    if prob <= 0:
        return image
    if prob >= 1:
        return fn(image)
    return tf.cond(_bernoulli(pred_seed, prob), lambda: fn(image), lambda: image)


def _random_mode_resize(image, seed, size) -> tf.Tensor:
    """Resize to ``size`` with a uniformly drawn mode (area, bilinear, bicubic), without
    antialiasing, as PyTorch's ``F.interpolate`` in Real-ESRGAN."""
    size = tf.cast(size, tf.int32)
    modes = ("area", "bilinear", "bicubic")
    pick = tf.random.stateless_uniform([], seed, 0, 3, dtype=tf.int32)
    branches = [lambda m=m: tf.image.resize(image, size, method=m) for m in modes]
    out = tf.switch_case(pick, branches)
    return tf.clip_by_value(tf.ensure_shape(out, [None, None, 3]), 0.0, 255.0)


def _random_factor(seed, probs, rng) -> tf.Tensor:
    s = _seeds(seed, 2)
    kind = _choice(s[0], probs)  # 0 up, 1 down, 2 keep
    lo, hi = (float(v) for v in rng)
    up = _uniform(s[1], 1.0, max(1.0, hi))
    down = _uniform(s[1], min(1.0, lo), 1.0)
    return tf.gather(tf.stack([up, down, tf.constant(1.0)]), kind)


def _sized(hw, factor) -> tf.Tensor:
    return tf.maximum(tf.cast(tf.cast(hw, tf.float32) * factor, tf.int32), MIN_SIDE)


def _classic(img, seed, scale: int, methods, opts) -> tf.Tensor:
    s = _seeds(seed, 7)

    def do_blur(x):
        kernel, ksize = _random_kernel(s[1], opts)
        return blur(x, kernel, ksize)

    x = _maybe(s[0], opts["blur_prob"], do_blur, img)
    x = _downscale_any(x, scale, methods, s[6])
    x = _maybe(s[2], opts["noise_prob"], lambda y: _random_noise(y, s[3], opts), x)
    x = _maybe(s[4], opts["jpeg_prob"], lambda y: _random_jpeg(y, s[5], opts["jpeg_range"]), x)
    return x


def _realesrgan(img, seed, scale: int, opts) -> tf.Tensor:
    s = _seeds(seed, 20)
    size = img.shape[0]
    lr_size = size // scale

    # ---- first stage
    kernel1, k1 = _random_kernel(s[0], opts)
    x = blur(img, kernel1, k1)
    factor = _random_factor(s[1], opts["resize_prob"], opts["resize_range"])
    x = _random_mode_resize(x, s[2], _sized(tf.shape(x)[:2], factor))
    x = _random_noise(x, s[3], opts)
    x = _random_jpeg(x, s[4], opts["jpeg_range"])

    # ---- second stage
    def blur2(y):
        kernel2, k2 = _random_kernel(s[5], opts, "2")
        return blur(y, kernel2, k2)

    x = _maybe(s[6], opts["second_blur_prob"], blur2, x)
    factor2 = _random_factor(s[7], opts["resize_prob2"], opts["resize_range2"])
    x = _random_mode_resize(x, s[8], _sized([lr_size, lr_size], factor2))
    x = _random_noise(x, s[9], opts, "2")

    # ---- final: [resize back + sinc] and JPEG, in random order
    def final_sinc(y):
        ksize = _odd_size(s[10], (7, 21))
        omega = _uniform(s[11], math.pi / 3, math.pi)
        return blur(y, sinc_kernel(omega, kernel_size=ksize), ksize)

    def resize_sinc(y):
        y = _random_mode_resize(y, s[12], [lr_size, lr_size])
        y = _maybe(s[13], opts["final_sinc_prob"], final_sinc, y)
        return tf.clip_by_value(y, 0.0, 255.0)

    def jpeg2(y):
        return _random_jpeg(y, s[14], opts["jpeg_range2"])

    x = tf.cond(
        _bernoulli(s[15], 0.5),
        lambda: jpeg2(resize_sinc(x)),
        lambda: resize_sinc(jpeg2(x)),
    )
    return _quantize(tf.ensure_shape(x, [lr_size, lr_size, 3]))


def degrade(image, seed, data_cfg, *, options: Mapping[str, Any] | None = None,
            methods=None) -> tf.Tensor:
    """The low-resolution input of one face, as ``data_cfg`` asks.

    Args:
        image: uint8 or float ``[S, S, 3]`` in [0, 255], ``S`` static and divisible by
            ``data_cfg.scale``.
        seed: int tensor ``[2]`` (e.g. :func:`tfface.data.pipeline.element_seed`);
            every random choice derives from it.
        data_cfg: a :class:`tfface.config.DataConfig` (``scale``, ``sr_downscale``,
            ``degradation``, ``degradation_options``).
        options: an already resolved option table (:func:`resolve_options`), to skip
            validation per call.
        methods: downscale kernels to draw from per element (``data.sr_crop``'s
            ``downscale``) instead of ``data_cfg.sr_downscale``; ``none`` and ``classic``
            only (``realesrgan`` draws its own resize modes).

    Returns:
        float32 ``[S/scale, S/scale, 3]`` in [0, 255] (integer-valued after JPEG or
        the Real-ESRGAN chain; the ``none`` preset is not rounded).

    Raises:
        ValueError: unsupported scale, size, downscale method or degradation options.
    """
    scale = int(data_cfg.scale)
    if scale not in SCALES:
        raise ValueError(f"data.scale must be one of {SCALES}, got {scale}")
    methods = (data_cfg.sr_downscale,) if not methods else tuple(methods)
    for method in methods:
        if method not in DOWNSCALE_METHODS:
            raise ValueError(
                f"data.sr_downscale must be one of {DOWNSCALE_METHODS}, got '{method}'"
            )
    if options is None:
        options = resolve_options(data_cfg.degradation, data_cfg.degradation_options)
    img = _as_float(image)
    size = img.shape[0]
    if size is None or img.shape[1] != size or size % scale:
        raise ValueError(
            f"degrade needs a static square image whose side is divisible by the scale "
            f"{scale}, got shape {img.shape}"
        )
    if data_cfg.degradation == "none":
        out = _downscale_any(img, scale, methods, seed)
    elif data_cfg.degradation == "classic":
        out = _classic(img, seed, scale, methods, options)
    else:
        out = _realesrgan(img, seed, scale, options)
    return tf.ensure_shape(out, [size // scale, size // scale, 3])
