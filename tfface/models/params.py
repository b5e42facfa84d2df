"""What every family accepts in ``model.params``: allow-lists, types and ranges.

``model.params`` comes from presets, ``--set`` and, most of all, from a run's
``config.json``, a file people hand to each other. Its values reach model builders
and keras-unet-collection, which turns activation names into code with ``eval()``.
So every value is checked against the family's spec below before any model is
built: strings only from an allow-list, numbers of the right type inside a range,
lists of bounded length, and unknown keys refused with the valid ones named.
:func:`check_params` is called by :func:`tfface.config.validate`, which runs on
every config that is resolved, loaded from a file or changed with ``--set``.

A key a family declares in its ``default_params`` but that has no spec here (a
parameter added later) is still checked conservatively: the value must have the
default's type, strings must be values the family's presets use, integers and
list entries must lie in 0..4096 (``tests/test_security.py`` asserts that every
key has a spec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

MAX_SHOWN = 60
"""Characters of a refused value shown in an error (a malicious value stays one line)."""


def shown(value: Any) -> str:
    """``repr`` of a value, cut to :data:`MAX_SHOWN` characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


@dataclass(frozen=True)
class Spec:
    """The values one parameter accepts."""

    kind: str
    """``int``, ``float``, ``bool``, ``choice`` or ``ints`` (a list of integers)."""
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    min_len: int = 0
    max_len: int = 0
    nullable: bool = False

    def describe(self) -> str:
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "ints":
            n = (f"{self.min_len}" if self.min_len == self.max_len
                 else f"{self.min_len} to {self.max_len}")
            text = f"a list of {n} integers in [{self.lo:g}, {self.hi:g}]"
        else:
            what = "an integer" if self.kind == "int" else "a number"
            text = f"{what} in [{self.lo:g}, {self.hi:g}]"
        return text + (" or null" if self.nullable else "")

    def check(self, value: Any) -> Any:
        """The value (lists as lists), or ValueError with :meth:`describe`."""
        if value is None and self.nullable:
            return None
        ok = False
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
        elif self.kind == "int":
            ok = _is_int(value) and self.lo <= value <= self.hi
        elif self.kind == "float":
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value) and self.lo <= value <= self.hi)
            value = float(value) if ok else value
        elif self.kind == "ints":
            ok = (isinstance(value, (list, tuple))
                  and self.min_len <= len(value) <= self.max_len
                  and all(_is_int(v) and self.lo <= v <= self.hi for v in value))
            value = list(value) if ok else value
        if not ok:
            raise ValueError(f"must be {self.describe()}, got {shown(value)}")
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def Int(lo: int, hi: int, *, null: bool = False) -> Spec:  # noqa: N802 - reads like a type
    return Spec("int", lo, hi, nullable=null)


def Float(lo: float, hi: float) -> Spec:  # noqa: N802
    return Spec("float", lo, hi)


def Bool() -> Spec:  # noqa: N802
    return Spec("bool")


def Choice(*choices: str) -> Spec:  # noqa: N802
    return Spec("choice", choices=tuple(choices))


def Ints(lo: int, hi: int, min_len: int, max_len: int, *, null: bool = False) -> Spec:  # noqa: N802
    return Spec("ints", lo, hi, min_len=min_len, max_len=max_len, nullable=null)


MAX_FILTERS = 2048
HEADS = Choice("clip", "tanh")

VNET_ACTIVATIONS = ("ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "GELU", "Snake")
"""Activation names keras-unet-collection may receive (it ``eval()``\\ s them in its
``layer_utils`` namespace): Keras layers and its own GELU/Snake, plus the project's
bounded ReLU6. Nothing else ever reaches it."""

MASK_INPUT_SPECS: dict[str, Spec] = {
    "mask_input": Bool(),
    "prefill": Bool(),
    "prefill_iterations": Int(0, 500),
    "prefill_method": Choice("windows", "pyramid"),
    "prefill_levels": Int(1, 8),
    "prefill_prior": Bool(),
    "keep_known": Bool(),
}
"""The inpainting generators' shared input options (tfface.models.layers.MASK_INPUT_PARAMS)."""

SPECS: dict[str, dict[str, Spec]] = {
    "vnet": {
        "filter_num": Ints(1, MAX_FILTERS, 2, 8),
        "res_num_ini": Int(1, 8),
        "res_num_max": Int(1, 8),
        "activation": Choice(*VNET_ACTIVATIONS),
        "batch_norm": Bool(),
        **MASK_INPUT_SPECS,
        "output_head": HEADS,
        "disc_filters": Ints(1, MAX_FILTERS, 1, 8),
        "disc": Choice("patch", "global_local"),
        "disc_blur": Bool(),
        "disc_sees_mask": Bool(),
        "upsample": Choice("transpose", "resize_conv", "nearest_conv"),
    },
    "pix2pix": {
        "base_filters": Int(1, MAX_FILTERS),
        "max_filters": Int(1, MAX_FILTERS),
        "depth": Int(2, 12, null=True),
        "dropout": Float(0.0, 0.95),
        "dropout_blocks": Int(0, 12),
        "output_head": HEADS,
        "disc_filters": Ints(1, MAX_FILTERS, 1, 8),
        **MASK_INPUT_SPECS,
    },
    "srgan": {
        "n_blocks": Int(0, 64),
        "filters": Int(1, 512),
        "output_head": HEADS,
        "upsample_skip": Choice("none", "bicubic", "bilinear", "nearest"),
        "oversample": Int(1, 4),
        "disc_filters": Int(1, 512),
        "disc_dense": Int(1, 8192),
        "disc_head": Choice("flatten", "gap"),
    },
    "wgan_gl": {
        "filters": Ints(1, MAX_FILTERS, 2, 8),
        "bottleneck_dilations": Ints(1, 64, 0, 8, null=True),
        "batch_norm": Bool(),
        "decoder_activation": Choice("relu", "relu6"),
        "output_head": HEADS,
        "critic_filters": Ints(1, MAX_FILTERS, 1, 8),
        "local_critic_filters": Ints(1, MAX_FILTERS, 1, 8),
        "local_size": Int(8, 4096, null=True),
        **MASK_INPUT_SPECS,
    },
    "unmask": {
        "seg_filters": Ints(1, MAX_FILTERS, 1, 8),
        "gen_filters": Int(1, 512),
        "dilations": Ints(1, 64, 0, 8),
        "activation": Choice("relu6", "elu", "lrelu"),
        "output_head": HEADS,
        "disc_filters": Ints(1, MAX_FILTERS, 1, 10),
        "conv": Choice("gated", "imputed"),
    },
}


def _fallback_spec(family, key: str) -> Spec | None:
    """A conservative spec for a default parameter that has no entry in :data:`SPECS`."""
    defaults = family.default_params
    if key not in defaults:
        return None
    default = defaults[key]
    if isinstance(default, bool):
        return Bool()
    if isinstance(default, str):
        seen = {default}
        for preset in family.presets.values():
            v = preset.get("model", {}).get("params", {}).get(key)
            if isinstance(v, str):
                seen.add(v)
        return Choice(*sorted(seen))
    if isinstance(default, int):
        return Int(0, 4096)
    if isinstance(default, float):
        return Float(0.0, 1e6)
    if isinstance(default, (list, tuple)) and all(_is_int(v) for v in default):
        return Ints(0, 4096, 0, 16)
    return Spec("choice", choices=(), nullable=default is None)  # only the default (null)


def family_specs(arch: str) -> dict[str, Spec]:
    """Every key ``arch`` accepts, with its spec (explicit or fallback)."""
    from tfface.models import get_arch  # here: the registry imports this module

    family = get_arch(arch)
    specs = dict(SPECS.get(arch, {}))
    for key in family.default_params:
        if key not in specs:
            specs[key] = _fallback_spec(family, key)
    return specs


def check_params(arch: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked against what ``arch`` accepts (see the module docstring).

    Raises:
        ValueError: a message naming ``model.params.KEY`` and what it accepts, or the
            unknown key and the valid ones.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"model.params must be a JSON object, got {shown(params)}")
    specs = family_specs(arch)
    out: dict[str, Any] = {}
    for key, value in params.items():
        spec = specs.get(key) if isinstance(key, str) else None
        if spec is None:
            name = shown(key)[1:-1] if isinstance(key, str) and len(repr(key)) <= MAX_SHOWN \
                else shown(key)
            raise ValueError(f"unknown key model.params.{name} for {arch} (valid: "
                             f"{', '.join(sorted(specs))})")
        try:
            out[key] = spec.check(value)
        except ValueError as e:
            raise ValueError(f"model.params.{key} of {arch} {e}") from None
    return out
