"""The occlusion registry, its types, the seed helpers and the fill options.

Generators register here (:func:`register_occlusion`) when their module is imported;
:mod:`tfface.data.occlusion` imports them in registration order.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.registry import Registry

MaskFn = Callable[[tf.Tensor, int, tf.Tensor], tf.Tensor]
FillFn = Callable[[tf.Tensor, int, tf.Tensor, tf.Tensor], tf.Tensor]


class Occluder(NamedTuple):
    """A configured generator: what :func:`occlude` draws for one mixture entry.

    Attributes:
        mask: ``fn(seed, size, landmarks) -> float32 [size, size, 1]`` in {0, 1}.
        fill: ``fn(seed, size, image, landmarks) -> float32 [size, size, 3]`` in
            [0, 255], called with the *mask's* seed (so an object's texture follows its
            drawn shape), or ``None`` for the CelebA-C noise N(128, 35) on hole pixels.
    """

    mask: MaskFn
    fill: FillFn | None = None


Factory = Callable[[Mapping[str, Any], Any], Occluder]

OCCLUSIONS: Registry[MaskFn] = Registry("occlusion generator")
"""Generator name → mask function (see module docstring for the signature)."""
OCCLUSION_IDS: dict[str, int] = {}
"""Generator name → stable int32 id (registration order, never reused)."""
FILLS: dict[str, FillFn] = {}
"""Generator name → object fill (the drawn occluder); missing names use :func:`noise_fill`."""
FACTORIES: dict[str, Factory] = {}
"""Generator name → ``factory(options, data_cfg) -> Occluder`` for generators with
options (see :func:`make_occlusion_fns`); generators without one take no options
except ``fill``."""
HELD_OUT: set[str] = set()
"""Generators kept for evaluation only (``realmask_unseen``, ``hand_unseen``): occluders
no model may train on, so figures on them measure occluders a model never saw. They
draw from templates / families that no other generator uses."""


def register_occlusion(
    name: str,
    *,
    id: int | None = None,
    fill: FillFn | None = None,
    factory: Factory | None = None,
    held_out: bool = False,
) -> Callable[[MaskFn], MaskFn]:
    """Decorator that adds a mask generator to :data:`OCCLUSIONS`.

    Args:
        name: registry key, used in ``cfg.data.occlusions``.
        id: stable int id; defaults to one more than the largest id in use.
        fill: optional object texture for the hole (default: :func:`noise_fill`);
            it is called with the mask's seed.
        factory: optional ``factory(options, data_cfg) -> Occluder`` that builds the
            generator from ``cfg.data.occlusion_options[name]`` (and folders).
        held_out: evaluation only (added to :data:`HELD_OUT`).
    """

    def deco(fn: MaskFn) -> MaskFn:
        if name in OCCLUSIONS:
            raise ValueError(f"occlusion generator '{name}' is already registered")
        new_id = id if id is not None else max(OCCLUSION_IDS.values(), default=-1) + 1
        if new_id in OCCLUSION_IDS.values():
            raise ValueError(f"occlusion id {new_id} is already used")
        OCCLUSIONS.register(name, fn)
        OCCLUSION_IDS[name] = new_id
        if fill is not None:
            FILLS[name] = fill
        if factory is not None:
            FACTORIES[name] = factory
        if held_out:
            HELD_OUT.add(name)
        return fn

    return deco


def _seed(seed) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(seed), tf.int64)


def _split(seed, n: int) -> list[tf.Tensor]:
    """``n`` independent seeds derived from ``seed`` (each int64 ``[2]``)."""
    return tf.unstack(tf.random.experimental.stateless_split(_seed(seed), n))


def keyed_seeds(seed, salt: int, keys) -> dict[str, tf.Tensor]:
    """One independent seed per name in ``keys``, derived from ``seed`` folded with the
    generator's own ``salt``: the fixed derivation each occluder shares between its mask,
    fill and look."""
    return dict(zip(keys, _split(tf.random.experimental.stateless_fold_in(_seed(seed), salt),
                                 len(keys))))


def _randint(shape, seed, lo, hi) -> tf.Tensor:
    """Uniform integers in the closed range ``[lo, hi]`` (int32)."""
    return tf.random.stateless_uniform(shape, seed, minval=lo, maxval=hi + 1, dtype=tf.int32)


_NEVER = -0x5EED0CC1
"""A seed value no caller uses: :func:`graph_stable`'s inputs are tied to it so that
graph optimization never treats them as constants."""


def graph_stable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(seed, size, *tensors)`` run as one traced graph, eagerly and in ``Dataset.map``.

    Graph optimization rewrites float arithmetic: a division by a constant becomes a
    multiplication by its reciprocal, sums and products of three or more terms are
    regrouped, constants are folded into neighbouring terms. Each rewrite changes the
    last bit of some results, so an op-by-op eager run and the same code inside
    ``Dataset.map`` can differ, and the package promises they agree bit for bit. The
    shading of the photo-like occluders is long float arithmetic, so their functions run
    through this wrapper: eagerly it calls a ``tf.function`` of ``fn`` (one trace per
    size and input shape), which graph optimization rewrites exactly as it rewrites
    the same ops inlined into a ``Dataset.map`` function. The float inputs are passed
    through a select on the seed that is never taken, so they are not constants in
    either graph (a constant input would be folded into the arithmetic differently).
    """
    traced: dict[Any, Any] = {}

    def call(seed, size: int, *tensors):
        seed = _seed(seed)
        ts = [tf.cast(tf.convert_to_tensor(t), tf.float32) for t in tensors]
        key = (int(size), tuple(tuple(t.shape.as_list()) for t in ts))
        if key not in traced:
            def body(seed, *ts):
                never = tf.reduce_all(tf.equal(seed, _NEVER))
                ts = [tf.where(never, t + 1.0, t) for t in ts]
                return fn(seed, int(size), *ts)

            traced[key] = tf.function(body, autograph=False,
                                      experimental_attributes={"_noinline": True})
        return traced[key](seed, *ts)

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    call.__doc__ = fn.__doc__
    call.__name__ = getattr(fn, "__name__", "graph_stable")
    return call


FILL_KINDS = ("noise", "solid", "object")
"""Fill kinds an ``occlusion_options[name]["fill"]`` may name: the CelebA-C noise
N(128, 35), one random solid color per element, or the drawn object itself (only for
generators with an object fill: ``facemask``, ``sunglasses``, ``eye_bar``)."""


def _check_options(name: str, options: Mapping[str, Any], valid: set[str]) -> None:
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for occlusion generator '{name}'; "
            f"valid: {', '.join(sorted(valid))}"
        )


def solid_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """One uniformly random RGB color per element (independent of the mask's shape)."""
    del image, landmarks
    color = tf.random.stateless_uniform(
        [3], tf.random.experimental.stateless_fold_in(_seed(seed), 0x5011D), maxval=256,
        dtype=tf.int32,
    )
    return tf.broadcast_to(tf.cast(color, tf.float32), [size, size, 3])


def _fill_for(name: str, options: Mapping[str, Any], object_fill: FillFn | None) -> FillFn | None:
    """The fill a generator's ``fill`` option selects (default: the object, if any)."""
    kind = options.get("fill", "object" if object_fill is not None else "noise")
    if kind not in FILL_KINDS:
        raise ValueError(f"{name}: fill must be one of {FILL_KINDS}, got '{kind}'")
    if kind == "object":
        if object_fill is None:
            raise ValueError(
                f"{name}: fill 'object' needs a generator that draws an object "
                f"({', '.join(sorted(FILLS))}); use 'noise' or 'solid'"
            )
        return object_fill
    return solid_fill if kind == "solid" else None
