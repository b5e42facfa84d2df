"""dlib's face-recognition ResNet rebuilt in Keras from its own weights: a recognizer with
a gradient.

``pipelines.evaluate --identity dlib`` judges restorations with dlib's 128-D face
descriptor (:class:`tfface.identity.verify.DlibEmbedder`). That network runs in C++, so a
generator cannot be trained against it. This module reads the weights of the very
same network out of ``dlib_face_recognition_resnet_model_v1.dat`` (the file the
``face_recognition_models`` package installs) and builds it as a Keras model, so the
identity loss of training is the recognizer the evaluation uses, not an approximation
(:mod:`tfface.identity.student` distils one, which is much weaker).

The file is read by a small parser written here, never by dlib's native deserializer,
so a file someone hands over can do no more than fail to parse: every length and shape
is bounded and checked against the one architecture this module builds (dlib's
``anet_type``: a 7x7 stem, 14 residual blocks of 32 to 256 channels, a 128-way linear
map), and anything else is refused with :class:`DlibResNetError`.

The format, as far as this reader needs it: integers are dlib's compact encoding (a
header byte holding the byte count, bit 7 for the sign, then little-endian bytes),
strings are a length and bytes, floats are an integer mantissa and exponent, a tensor is
a version (2), four dimensions and raw little-endian float32s. Layers are written
innermost first; each starts with its type name (``con_4``, ``affine_``, ...).

Inference-time batch norm (``affine_``) is folded into the convolution before it, and
dlib's input mean and 1/256 scale into the stem (which has no padding, so the fold is
exact); the Keras model reads 150 px RGB chips in 0..255 like dlib's own input layer.
Where a residual sum meets tensors of different sizes (the downsampling blocks), dlib
zero-pads the smaller one at the far end of each axis; :class:`PadAdd` does the same.

:class:`ChipAligner` reproduces the chip alignment of ``DlibEmbedder`` as an affine
map per face, so a differentiable resampler can cut the same chip from a restoration.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from tfface.fileio import open_regular

CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
SAME_PERSON_DISTANCE = 0.6
"""dlib's threshold: descriptors closer than this are the same person."""
MAX_FILE_BYTES = 64 << 20
"""dlib's file is 22.5 MB; anything much larger is not it."""
MAX_GAP = 4096
"""Bytes allowed between two layers' records (flags and empty buffers; a real file has ~60)."""
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
"""(channels, blocks, first block downsamples) from input to output, dlib's ``anet_type``."""
NAMES = (b"con_4", b"affine_", b"max_pool_2", b"avg_pool_2", b"fc_2", b"input_rgb_image_sized")


class DlibResNetError(ValueError):
    """A file that is not dlib's face-recognition ResNet (one-line message)."""


@dataclass
class Conv:
    kernel: np.ndarray      # [kh, kw, in, out], affine folded in
    bias: np.ndarray        # [out]
    stride: int
    padding: int


@dataclass
class DlibResNetWeights:
    stem: Conv
    pool: tuple[int, int, int]            # max pool: size, stride, padding
    blocks: list[tuple[Conv, Conv, bool]] = field(default_factory=list)  # (conv a, conv b, down)
    fc: np.ndarray = None                 # [256, 128]


class _Reader:
    def __init__(self, data: bytes):
        self.b, self.p = data, 0

    def fail(self, what: str):
        raise DlibResNetError(f"not dlib's face-recognition ResNet: {what} at byte {self.p}")

    def int(self) -> int:
        if self.p >= len(self.b):
            self.fail("file ends early")
        head = self.b[self.p]
        n = head & 0x0F
        if n > 8 or head & 0x70 or self.p + 1 + n > len(self.b):
            self.fail("bad integer")
        v = int.from_bytes(self.b[self.p + 1:self.p + 1 + n], "little")
        self.p += 1 + n
        return -v if head & 0x80 else v

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if abs(exponent) > 2000:
            self.fail("bad float")
        return math.ldexp(mantissa, exponent)

    def name(self) -> bytes:
        n = self.int()
        if not 0 < n <= 64 or self.p + n > len(self.b):
            self.fail("bad string")
        s = self.b[self.p:self.p + n]
        self.p += n
        return s

    def dims(self, version: int) -> list[int]:
        if self.int() != version:
            self.fail("unknown tensor version")
        d = [self.int() for _ in range(4)]
        if any(v < 0 or v > 1 << 24 for v in d) or math.prod(d) > 1 << 24:
            self.fail("bad tensor shape")
        return d

    def tensor(self) -> np.ndarray:
        d = self.dims(2)
        n = math.prod(d)
        if self.p + 4 * n > len(self.b):
            self.fail("file ends inside a tensor")
        a = np.frombuffer(self.b, "<f4", n, self.p).astype(np.float32).reshape(d)
        self.p += 4 * n
        if not np.all(np.isfinite(a)):
            self.fail("non-finite weights")
        return a

    def next_layer(self) -> bytes:
        """Skip to the next layer record (past flags and empty buffers) and read its name."""
        best = None
        for name in NAMES:
            tag = bytes([1, len(name)]) + name
            at = self.b.find(tag, self.p, self.p + MAX_GAP + len(tag))
            if at >= 0 and (best is None or at < best[0]):
                best = (at, name)
        if best is None:
            self.fail("no layer record where one was expected")
        self.p = best[0]
        return self.name()


def _conv(r: _Reader) -> tuple[np.ndarray, np.ndarray, int, int]:
    params = r.tensor().ravel()
    filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
    fdims, bdims = r.dims(1), r.dims(1)
    k = fdims[1]
    if (fdims != [filters, k, nr, nc] or bdims != [1, filters, 1, 1] or sy != sx or py != px
            or params.size != filters * (k * nr * nc + 1)):
        r.fail("inconsistent convolution")
    w = params[:filters * k * nr * nc].reshape(filters, k, nr, nc).transpose(2, 3, 1, 0)
    return w, params[filters * k * nr * nc:], sy, py


def _affine(r: _Reader, channels: int) -> tuple[np.ndarray, np.ndarray]:
    params = r.tensor().ravel()
    g, b = r.dims(1), r.dims(1)
    if params.size != 2 * channels or g != [1, channels, 1, 1] or b != g:
        r.fail("batch-norm size does not match its convolution")
    return params[:channels], params[channels:]


def _conv_affine(r: _Reader) -> Conv:
    w, b, stride, pad = _conv(r)
    if r.next_layer() != b"affine_":
        r.fail("a convolution without its batch norm")
    gamma, beta = _affine(r, w.shape[-1])
    return Conv(w * gamma, b * gamma + beta, stride, pad)


def _pool(r: _Reader) -> tuple[int, int, int]:
    nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
    if nr != nc or sy != sx or py != px:
        r.fail("a pooling layer this model does not have")
    return nr, sy, py


def parse(data: bytes) -> DlibResNetWeights:
    """The weights in ``data`` (the bytes of dlib's ``.dat``), checked against ``anet_type``.

    Raises:
        DlibResNetError: the bytes are anything else.
    """
    r = _Reader(data)
    r.int()
    if r.name() != b"loss_metric_2":
        r.fail("not a metric-learning network")
    if r.next_layer() != b"input_rgb_image_sized":
        r.fail("no RGB input layer")
    mean = np.array([r.float() for _ in range(3)], np.float32)
    if (r.int(), r.int()) != (CHIP_SIZE, CHIP_SIZE) or not np.all((mean >= 0) & (mean <= 255)):
        r.fail(f"not a {CHIP_SIZE} px RGB input")
    if r.next_layer() != b"con_4":
        r.fail("no stem convolution")
    stem = _conv_affine(r)
    if stem.kernel.shape != (7, 7, 3, 32) or stem.padding != 0:
        r.fail("stem is not a 7x7 convolution to 32 channels without padding")
    # dlib's input is (pixel - mean) / 256; the stem has no padding, so fold that in.
    stem.bias = stem.bias - np.einsum("hwio,i->o", stem.kernel, mean) / 256.0
    stem.kernel = stem.kernel / 256.0
    if r.next_layer() != b"max_pool_2":
        r.fail("no max pool after the stem")
    out = DlibResNetWeights(stem=stem, pool=_pool(r))
    if out.pool != (3, 2, 0):
        r.fail("the stem's max pool is not 3x3 with stride 2")
    channels = 32
    for width, count, downsample in STAGES:
        for i in range(count):
            down = downsample and i == 0
            convs = []
            for j in range(2):
                if r.next_layer() != b"con_4":
                    r.fail("a residual block without its convolutions")
                conv = _conv_affine(r)
                want_in = channels if j == 0 else width
                if (conv.kernel.shape != (3, 3, want_in, width)
                        or (conv.stride, conv.padding) != ((2, 0) if down and j == 0 else (1, 1))):
                    r.fail(f"block convolution {conv.kernel.shape} stride {conv.stride} "
                           "is not dlib's")
                convs.append(conv)
            if down:
                if r.next_layer() != b"avg_pool_2" or _pool(r) != (2, 2, 0):
                    r.fail("a downsampling block without its 2x2 average pool")
            out.blocks.append((convs[0], convs[1], down))
            channels = width
    if r.next_layer() != b"avg_pool_2" or _pool(r)[0] != 0:
        r.fail("no global average pool")
    if r.next_layer() != b"fc_2":
        r.fail("no final linear layer")
    outputs, inputs = r.int(), r.int()
    fc = r.tensor()
    if (outputs, inputs) != (DESCRIPTOR_DIM, channels) or fc.shape != (inputs, outputs, 1, 1):
        r.fail("final layer is not 256 -> 128")
    out.fc = fc.reshape(inputs, outputs)
    return out


def read_weights(path: str | os.PathLike) -> DlibResNetWeights:
    """Parse the ``.dat`` at ``path`` (see :func:`parse`); nothing in it is executed."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise DlibResNetError(f"cannot read {path}: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise DlibResNetError(f"{path} is {size >> 20} MB; dlib's face ResNet is 22 MB")
    with open_regular(path, "rb") as f:
        return parse(f.read())


def _pad_add_layer():
    import tensorflow as tf

    from tfface import keras

    class PadAdd(keras.layers.Layer):
        """``a + b`` with the smaller one zero-padded at the far end of each axis (dlib's add)."""

        def call(self, a, b):
            shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

            def grow(t):
                pads = [[0, 0]] + [[0, s - n] for s, n in zip(shape, t.shape[1:])]
                return tf.pad(t, pads) if any(p[1] for p in pads) else t

            return grow(a) + grow(b)

    return PadAdd


def build_model(weights: DlibResNetWeights, name: str = "dlib_resnet",
                input_size: int = CHIP_SIZE, last_block: int | None = None):
    """The Keras network: ``[B, 150, 150, 3]`` RGB chips in 0..255 → ``[B, 128]`` descriptors.

    Its layers are frozen (``trainable=False``): it is a judge, not a learner.
    ``input_size``: another (static) input side, for the feature maps of
    :func:`perceptual_loss_fn`; the descriptor is only meaningful on 150 px chips.
    ``last_block``: stop after that residual block (the model's output is its feature
    map), so a small input need not survive the deeper strides.
    """
    from tfface import keras

    L = keras.layers
    PadAdd = _pad_add_layer()

    def conv(x, c: Conv, tag: str):
        if c.padding:
            x = L.ZeroPadding2D(c.padding, name=f"{tag}_pad")(x)
        layer = L.Conv2D(c.kernel.shape[-1], c.kernel.shape[:2], strides=c.stride, name=tag)
        x = layer(x)
        layer.set_weights([c.kernel, c.bias])
        return x

    inp = keras.Input((int(input_size), int(input_size), 3), name="chip")
    x = L.ReLU(name="stem_relu")(conv(inp, weights.stem, "stem"))
    size, stride, _ = weights.pool  # padding 0, checked by parse()
    x = L.MaxPooling2D(size, stride, name="stem_pool")(x)
    for i, (a, b, down) in enumerate(weights.blocks):
        y = L.ReLU(name=f"block{i}_relu")(conv(x, a, f"block{i}_a"))
        y = conv(y, b, f"block{i}_b")
        skip = L.AveragePooling2D(2, 2, name=f"block{i}_skip")(x) if down else x
        x = L.ReLU(name=f"block{i}_out")(PadAdd(name=f"block{i}_add")(y, skip))
        if last_block is not None and i >= last_block:
            model = keras.Model(inp, x, name=name)
            model.trainable = False
            return model
    x = L.GlobalAveragePooling2D(name="pool")(x)
    fc = L.Dense(DESCRIPTOR_DIM, use_bias=False, name="descriptor")
    out = fc(x)
    fc.set_weights([weights.fc])
    model = keras.Model(inp, out, name=name)
    model.trainable = False
    return model


def load_packaged_model():
    """The Keras network from the ``face_recognition_models`` package's file.

    Raises:
        tfface.identity.verify.IdentityError: the package is not installed.
        DlibResNetError: its file is not the expected network.
    """
    from tfface.identity.verify import packaged_dlib_models

    return build_model(read_weights(packaged_dlib_models()["descriptor"]))


# -- alignment ------------------------------------------------------------------------

def chip_matrix(details) -> np.ndarray:
    """The 2x3 map from chip pixel (x, y, 1) to image pixel of one ``dlib.chip_details``.

    dlib maps the chip's corners onto the corners of ``details.rect`` rotated by
    ``details.angle`` about the rectangle's centre.
    """
    r = details.rect
    left, top, right, bottom = r.left(), r.top(), r.right(), r.bottom()
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    c, s = math.cos(details.angle), math.sin(details.angle)

    def rot(x, y):
        return cx + c * (x - cx) - s * (y - cy), cy + s * (x - cx) + c * (y - cy)

    x0, y0 = rot(left, top)
    x1, y1 = rot(right, top)
    x2, y2 = rot(left, bottom)
    w, h = details.cols - 1, details.rows - 1
    return np.array([[(x1 - x0) / w, (x2 - x0) / h, x0],
                     [(y1 - y0) / w, (y2 - y0) / h, y0]], np.float64)


class ChipAligner:
    """The chip alignment of :class:`tfface.identity.verify.DlibEmbedder`, as affine maps.

    The five-point landmark model runs on each face inside the same fixed box, and
    ``dlib.get_face_chip_details`` gives the chip; :meth:`transforms` returns each map in
    the 8-number form of ``tf.raw_ops.ImageProjectiveTransformV3`` so a restoration can
    be resampled into exactly the chip dlib cuts from the face it was measured on.
    """

    def __init__(self, chip_size: int = CHIP_SIZE, padding: float = 0.25,
                 face_box: Sequence[float] | None = None):
        from tfface.identity.verify import FACE_BOX, IdentityError, INSTALL_HINT, packaged_dlib_models

        try:
            import dlib
        except ImportError:
            raise IdentityError(f"dlib's chip alignment needs dlib: {INSTALL_HINT}") from None
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(packaged_dlib_models()["landmarks"])
        self.chip_size, self.padding = int(chip_size), float(padding)
        self.face_box = tuple(face_box or FACE_BOX)
        # dlib's shape predictor is not safe to call from two threads at once, and a graph
        # that runs several training steps can call this from parallel loop iterations.
        self._lock = threading.Lock()

    def transforms(self, faces: np.ndarray) -> np.ndarray:
        """``[B, 8]`` float32 chip-to-image maps of ``[B, H, W, 3]`` uint8 faces."""
        with self._lock:
            return self._transforms(np.array(faces, dtype=np.uint8, copy=True))

    def _transforms(self, faces: np.ndarray) -> np.ndarray:
        from tfface.identity.verify import box_landmarks

        out = np.zeros((len(faces), 8), np.float32)
        for i, face in enumerate(faces):  # rows of a fresh C-contiguous copy
            shape = box_landmarks(self._dlib, self._landmarks, face, self.face_box)
            m = chip_matrix(self._dlib.get_face_chip_details(shape, self.chip_size, self.padding))
            out[i, :6] = m.ravel()
        return out


def resample_chips(images, transforms, chip_size: int = CHIP_SIZE):
    """Bilinear chips ``[B, S, S, C]`` of ``images`` at the maps ``transforms`` (differentiable)."""
    import tensorflow as tf

    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.cast(transforms, tf.float32),
        output_shape=tf.constant([chip_size, chip_size], tf.int32), fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


# -- the identity loss ------------------------------------------------------------------

def _gaussian_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(g, g) / np.outer(g, g).sum()
    return np.repeat(k[:, :, None, None], 3, axis=2).astype(np.float32)  # [k, k, 3, 1]


def jitter_maps(maps, shift: float, scale: float, angle: float, chip_size: int = CHIP_SIZE):
    """``maps`` (``[B, 8]`` chip-to-image) composed with a random similarity of the chip
    per face: turned by up to ``angle`` radians and scaled by up to ``scale`` about the
    chip's centre, then moved by up to ``shift`` chip pixels."""
    import tensorflow as tf

    n = tf.shape(maps)[0]
    u = lambda lim: tf.random.uniform([n], -lim, lim)  # noqa: E731
    th, sc, dx, dy = u(angle), 1.0 + u(scale), u(shift), u(shift)
    c = (chip_size - 1) / 2.0
    ca, sa = sc * tf.cos(th), sc * tf.sin(th)
    # J: chip -> chip, p' = R (p - c) + c + d
    j = [ca, -sa, c - ca * c + sa * c + dx, sa, ca, c - sa * c - ca * c + dy]
    a0, a1, a2, b0, b1, b2 = (maps[:, i] for i in range(6))
    out = [a0 * j[0] + a1 * j[3], a0 * j[1] + a1 * j[4], a0 * j[2] + a1 * j[5] + a2,
           b0 * j[0] + b1 * j[3], b0 * j[1] + b1 * j[4], b0 * j[2] + b1 * j[5] + b2]
    return tf.concat([tf.stack(out, axis=1), tf.zeros([n, 2], maps.dtype)], axis=1)


def identity_loss_fn(model=None, aligner: ChipAligner | None = None, blur_sigma: float = 2.0,
                     jitter: tuple[float, float, float] | None = (3.0, 0.05, 0.05)):
    """``fn(target, pred) -> scalar``: dlib's squared descriptor distance of restoration and
    target, in units of its same-person distance (0.6), averaged over the batch.

    Both faces (``[B, H, W, 3]`` in [-1, 1]) are cut into the chip dlib aligns on the
    *target* (landmarks on the clean face, computed outside the graph; the chip maps
    carry no gradient), and the restoration's chip is differentiated through the
    resampler and the Keras network. The target's descriptor is a constant.

    Against a fixed recognizer a generator learns to paint patterns that move the
    descriptor rather than a face (a fine stripe grid over the hole, measured): so by
    default both chips are blurred (Gaussian, ``blur_sigma`` chip pixels; it passes a
    face and removes 2–4 px patterns) and cut with a random similarity per face and
    step (``jitter``: shift in chip pixels, relative scale, angle in radians), so only
    what survives small moves and blur, the face, lowers the loss. ``None``/0 turns
    either off.
    """
    import tensorflow as tf

    model = model if model is not None else load_packaged_model()
    aligner = aligner if aligner is not None else ChipAligner()
    scale = 1.0 / SAME_PERSON_DISTANCE ** 2
    kernel = tf.constant(_gaussian_kernel(blur_sigma)) if blur_sigma and blur_sigma > 0 else None

    def view(img, maps):
        chip = resample_chips(img, maps)
        if kernel is not None:
            chip = tf.nn.depthwise_conv2d(chip, kernel, [1, 1, 1, 1], "SAME")
        return model(chip, training=False)

    def fn(target, pred):
        target = (tf.clip_by_value(tf.cast(target, tf.float32), -1.0, 1.0) + 1.0) * 127.5
        pred = (tf.cast(pred, tf.float32) + 1.0) * 127.5
        maps = tf.numpy_function(aligner.transforms, [tf.cast(tf.round(target), tf.uint8)],
                                 tf.float32, stateful=False)
        maps = tf.reshape(maps, [-1, 8])
        if jitter:
            maps = jitter_maps(maps, *jitter)
        maps = tf.stop_gradient(maps)
        t = tf.stop_gradient(view(target, maps))
        p = view(pred, maps)
        return tf.reduce_mean(tf.reduce_sum(tf.square(p - t), axis=-1)) * scale

    return fn


# -- a face perceptual loss ----------------------------------------------------------

PERCEPTUAL_LAYERS = ("stem_relu", "block2_out", "block6_out", "block9_out")
"""Feature maps of the face perceptual loss, one per scale of the network below its
identity stages: ``stem_relu`` (half resolution, 7x7 edges and fine texture: skin, hair,
lip lines), ``block2_out`` (quarter resolution, the end of the 32-channel stage: small
parts, eyelids, nostrils), ``block6_out`` (1/8, the end of the 64-channel stage: eyes,
mouth, nose as shapes) and ``block9_out`` (1/16, the end of the 128-channel stage: the
arrangement of the parts). The two 256-channel stages are left out: they encode who the
person is, which the identity term already measures on aligned chips."""


def perceptual_loss_fn(image_size: int, layers: Sequence[str] = PERCEPTUAL_LAYERS,
                       weights: DlibResNetWeights | None = None):
    """``fn(target, pred) -> scalar``: distance of restoration and real face in the feature
    maps of dlib's face ResNet (a network trained on faces, the only pretrained one that
    installs offline; no ImageNet VGG does).

    Both ``[B, image_size, image_size, 3]`` faces in [-1, 1] go through the network's
    convolutional trunk at their own resolution (no chip alignment, no blur: the loss is
    about texture and parts, which blur would remove). Each layer's feature vectors are
    scaled to unit length per position (as LPIPS does, without its learned weights, so
    every layer counts alike whatever its magnitude), the squared difference is summed
    over channels and averaged over positions, and the layers are averaged. The target's
    features are constants.

    Raises:
        tfface.identity.verify.IdentityError: the ``face_recognition_models`` package is missing.
        DlibResNetError: its file is not the expected network.
    """
    import tensorflow as tf

    from tfface import keras

    if weights is None:
        from tfface.identity.verify import packaged_dlib_models

        weights = read_weights(packaged_dlib_models()["descriptor"])
    blocks = [int(n[5:].split("_")[0]) for n in layers
              if n.startswith("block") and n[5:].split("_")[0].isdigit()]
    net = build_model(weights, name="dlib_features", input_size=image_size,
                      last_block=max(blocks, default=0))
    unknown = [n for n in layers if n not in {la.name for la in net.layers}]
    if unknown or not layers:
        raise DlibResNetError(f"unknown feature layer(s) {unknown or '(none given)'}; "
                              f"e.g. {', '.join(PERCEPTUAL_LAYERS)}")
    feats = keras.Model(net.input, [net.get_layer(n).output for n in layers],
                        name="dlib_perceptual")
    feats.trainable = False

    def unit(f):
        return f * tf.math.rsqrt(tf.reduce_sum(tf.square(f), axis=-1, keepdims=True) + 1e-10)

    def fn(target, pred):
        t = (tf.clip_by_value(tf.cast(target, tf.float32), -1.0, 1.0) + 1.0) * 127.5
        p = (tf.cast(pred, tf.float32) + 1.0) * 127.5
        n = tf.shape(t)[0]
        out = feats(tf.concat([tf.stop_gradient(t), p], axis=0), training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        terms = []
        for f in out:
            ft, fp = tf.stop_gradient(unit(f[:n])), unit(f[n:])
            terms.append(tf.reduce_mean(tf.reduce_sum(tf.square(fp - ft), axis=-1)))
        return tf.add_n(terms) / float(len(terms))

    return fn
