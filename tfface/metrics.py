"""Image-quality metrics.

Convention (stated once, used everywhere): images are compared as 8-bit RGB, i.e.
model outputs in [-1, 1] are mapped to [0, 255], rounded and clipped exactly as an
app would display them, then PSNR uses MAX = 255 and SSIM the standard Gaussian
11×11 window (``tf.image.ssim``) on all three channels. L1 is the mean absolute
error in [0, 1] units.

Super-resolution is also reported the way the SR literature does (so numbers are
comparable with published tables): on the luma channel Y of ITU-R BT.601 (the
MATLAB ``rgb2ycbcr`` of the 8-bit images, Y in [16, 235], not rounded), with
``scale`` pixels cropped from every border (``psnr_y``/``ssim_y``), next to the same
metrics of bicubic upsampling of the low-resolution input.
"""

from __future__ import annotations

import tensorflow as tf


def to_uint8_levels(x: tf.Tensor) -> tf.Tensor:
    """[-1, 1] float → float32 holding the integer pixel values 0..255."""
    return tf.clip_by_value(tf.round((tf.cast(x, tf.float32) + 1.0) * 127.5), 0.0, 255.0)


def psnr(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Per-image PSNR in dB on 8-bit RGB; identical images give +inf, capped at 100 dB."""
    v = tf.image.psnr(to_uint8_levels(target), to_uint8_levels(pred), max_val=255.0)
    return tf.minimum(v, 100.0)


def ssim(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Per-image SSIM on 8-bit RGB (Gaussian window 11, sigma 1.5)."""
    return tf.image.ssim(to_uint8_levels(target), to_uint8_levels(pred), max_val=255.0)


def l1(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Per-image mean absolute error in [0, 1] units."""
    d = tf.abs(to_uint8_levels(target) - to_uint8_levels(pred)) / 255.0
    return tf.reduce_mean(d, axis=[1, 2, 3])


def rgb_to_y(levels: tf.Tensor) -> tf.Tensor:
    """8-bit RGB levels (0..255 floats) → BT.601 luma Y in [16, 235], shape [..., 1]."""
    w = tf.constant([65.481, 128.553, 24.966], tf.float32) / 255.0
    return 16.0 + tf.reduce_sum(levels * w, axis=-1, keepdims=True)


def _y_cropped(x: tf.Tensor, border: int) -> tf.Tensor:
    y = rgb_to_y(to_uint8_levels(x))
    if border:
        y = y[:, border:-border, border:-border, :]
    return y


def psnr_y(target: tf.Tensor, pred: tf.Tensor, border: int = 0) -> tf.Tensor:
    """Per-image PSNR (dB) on the Y channel after cropping ``border`` pixels (SR convention)."""
    v = tf.image.psnr(_y_cropped(target, border), _y_cropped(pred, border), max_val=255.0)
    return tf.minimum(v, 100.0)


def ssim_y(target: tf.Tensor, pred: tf.Tensor, border: int = 0) -> tf.Tensor:
    """Per-image SSIM on the Y channel after cropping ``border`` pixels."""
    return tf.image.ssim(_y_cropped(target, border), _y_cropped(pred, border), max_val=255.0)


def bicubic_upsample(lr: tf.Tensor, size: int) -> tf.Tensor:
    """The baseline of SR tables: bicubic upsampling of ``lr`` to ``size``, in [-1, 1]."""
    up = tf.image.resize(tf.cast(lr, tf.float32), [size, size], method="bicubic")
    return tf.clip_by_value(up, -1.0, 1.0)


def _gradient_magnitude(levels: tf.Tensor) -> tf.Tensor:
    """Sobel gradient magnitude of the luma of 8-bit RGB levels, ``[B, H, W, 1]``."""
    g = tf.image.sobel_edges(rgb_to_y(levels))  # [B, H, W, 1, 2]
    return tf.sqrt(tf.reduce_sum(tf.square(g), axis=-1) + 1e-12)


def eroded_hole(mask: tf.Tensor, erode: int = 2) -> tf.Tensor:
    """``mask`` (1 = hole, ``[B, H, W, 1]``) shrunk by ``erode`` pixels on every side: the
    part of the hole whose Sobel window sees only filled pixels, not the kept border."""
    hole = tf.cast(tf.cast(mask, tf.float32) > 0.5, tf.float32)
    if erode <= 0:
        return hole
    k = 2 * int(erode) + 1
    return 1.0 - tf.nn.max_pool2d(1.0 - hole, k, 1, "SAME")


def hole_sharpness(target: tf.Tensor, pred: tf.Tensor, mask: tf.Tensor,
                   erode: int = 2) -> tf.Tensor:
    """Per-image realism of a fill: mean Sobel gradient magnitude (luma, 8-bit) of ``pred``
    inside the eroded hole ÷ that of the real face ``target`` there.

    1.0 is as sharp as the real face; a smooth, averaged fill (the optimum of a pixel
    loss) scores well below 1 (OpenCV's diffusion about 0.5), noise or painted grids
    above. Judge it together with PSNR and a grid: sharpness alone can be faked. Images
    whose eroded hole is empty, or whose real face is flat there, get NaN (left out of
    means).
    """
    region = eroded_hole(mask, erode)
    gt = _gradient_magnitude(to_uint8_levels(target))
    gp = _gradient_magnitude(to_uint8_levels(pred))
    n = tf.reduce_sum(region, axis=[1, 2, 3])
    num = tf.reduce_sum(gp * region, axis=[1, 2, 3])
    den = tf.reduce_sum(gt * region, axis=[1, 2, 3])
    ok = tf.logical_and(n > 0, den > 1e-3 * tf.maximum(n, 1.0))
    nan = tf.fill(tf.shape(n), float("nan"))
    return tf.where(ok, num / tf.maximum(den, 1e-6), nan)


def sharpness(target: tf.Tensor, pred: tf.Tensor, border: int = 0) -> tf.Tensor:
    """Per-image :func:`hole_sharpness` over the whole image (``border`` pixels cropped
    from every side, and one more, so the Sobel window reads only kept pixels): mean Sobel
    gradient magnitude of ``pred``'s luma ÷ that of ``target``'s. How super-resolution is
    judged for realism: bicubic upsampling scores about 0.7 on faces, the real face 1.0, a
    model that draws outlines or noise above."""
    shape = tf.shape(target)
    b = int(border) + 1  # the Sobel window of the region's outer pixels stays inside
    inner = tf.ones([shape[0], shape[1] - 2 * b, shape[2] - 2 * b, 1])
    region = tf.pad(inner, [[0, 0], [b, b], [b, b], [0, 0]])
    return hole_sharpness(target, pred, region, erode=0)


def mask_scores(target, prob, per_image: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
    """Pixel accuracy and IoU of the predicted mask ``prob > 0.5`` against the true mask
    ``target > 0.5`` (``[B, H, W, 1]``), the one mask metric of the project (the occluder
    segmenter's training log and card, the ``unmask`` family's validation).

    Per image by default (IoU 1 for an image where both masks are empty); with
    ``per_image=False`` one pooled figure for the whole batch (the pixels of every image
    together: one intersection over one union).
    """
    pred = tf.cast(tf.convert_to_tensor(prob) > 0.5, tf.float32)
    true = tf.cast(tf.convert_to_tensor(target) > 0.5, tf.float32)
    axes = list(range(1, len(pred.shape))) if per_image else None
    acc = tf.reduce_mean(tf.cast(tf.equal(pred, true), tf.float32), axis=axes)
    inter = tf.reduce_sum(pred * true, axis=axes)
    union = tf.reduce_sum(tf.maximum(pred, true), axis=axes)
    iou = tf.where(union > 0, inter / tf.maximum(union, 1.0), tf.ones_like(union))
    return acc, iou


METRICS = {"psnr": psnr, "ssim": ssim, "l1": l1}
