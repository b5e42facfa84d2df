"""Quantization modes as one config object with a constructor per mode.

``QuantizationConfig.for_int8(...)`` etc. describe *what* to produce; :func:`converter_for`
turns a config into a ready ``tf.lite.TFLiteConverter`` for a Keras generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterable, Iterator

import numpy as np

import tfface  # noqa: F401
import tensorflow as tf

MODES = ("float", "fp16", "dynamic", "int8", "qat")
FULL_INTEGER = ("int8", "qat")
"""Modes whose files compute in int8 throughout (calibrated from representative data)."""
IO_TYPES = {"float": tf.float32, "int8": tf.int8, "uint8": tf.uint8}
MIN_CALIBRATION_SAMPLES = 100


@dataclass(frozen=True)
class QuantizationConfig:
    mode: str
    io: str = "float"
    """dtype of the input/output tensors of full-integer files: float, int8 or uint8."""
    calibration_samples: int = 0
    keep_float: tuple[str, ...] = ()
    """Keras layers whose ops stay float in a full-integer file (``--keep-float``)."""
    auto_mixed_db: float | None = None
    """Keep the fewest layers float so PSNR stays within this many dB of float."""
    qat_steps: int = 0
    qat_lr: float = 1e-4
    pruned: float | None = None
    """Target sparsity the model was pruned to before conversion (naming and card)."""

    @classmethod
    def for_float(cls) -> "QuantizationConfig":
        return cls("float")

    @classmethod
    def for_fp16(cls) -> "QuantizationConfig":
        return cls("fp16")

    @classmethod
    def for_dynamic(cls) -> "QuantizationConfig":
        return cls("dynamic")

    @classmethod
    def for_int8(cls, io: str = "float", calibration_samples: int = 200) -> "QuantizationConfig":
        if io not in IO_TYPES:
            raise ValueError(f"io must be one of {sorted(IO_TYPES)}, got '{io}'")
        return cls("int8", io=io, calibration_samples=int(calibration_samples))

    @classmethod
    def for_qat(cls, steps: int, io: str = "float", calibration_samples: int = 200,
                lr: float = 1e-4) -> "QuantizationConfig":
        """Quantization-aware fine-tuning for ``steps`` steps, then full-integer
        conversion (the representative data calibrates tensors QAT does not model)."""
        if int(steps) < 1:
            raise ValueError(f"--qat takes a number of fine-tuning steps >= 1, got {steps}")
        base = cls.for_int8(io, calibration_samples)
        return replace(base, mode="qat", qat_steps=int(steps), qat_lr=float(lr))

    def with_selection(self, keep_float: tuple[str, ...] | list[str] = (),
                       auto_mixed_db: float | None = None) -> "QuantizationConfig":
        """This full-integer config with layers kept in float (named or chosen)."""
        if self.mode != "int8":
            raise ValueError("--keep-float/--auto-mixed apply to post-training --int8 files "
                             "(not to --qat, whose layers all train quantized)")
        if keep_float and auto_mixed_db is not None:
            raise ValueError("use either --keep-float or --auto-mixed, not both")
        return replace(self, keep_float=tuple(keep_float), auto_mixed_db=auto_mixed_db)

    @property
    def full_integer(self) -> bool:
        return self.mode in FULL_INTEGER

    @property
    def mixed(self) -> bool:
        return bool(self.keep_float) or self.auto_mixed_db is not None

    @property
    def file_stem(self) -> str:
        stem = f"model_{self.mode}"
        if self.full_integer and self.io != "float":
            stem += f"_io{self.io}"
        if self.mixed:
            stem += "_mixed"
        if self.pruned:
            stem += f"_pruned{round(self.pruned * 100)}"
        return stem

    def to_dict(self) -> dict:
        d = asdict(self)
        d["keep_float"] = list(self.keep_float)
        return d


def serving_function(model: tf.keras.Model, batch: int = 1) -> tf.types.experimental.ConcreteFunction:
    """A concrete function with static shapes and the model's own tensor names.

    The ``serving_default`` signature of the file then has inputs named after the
    Keras inputs (e.g. ``occluded``) and one output named after the output layer
    (e.g. ``restored``), which is what app code and the model card refer to.
    """
    specs = [
        tf.TensorSpec([batch, *t.shape[1:]], tf.float32, name=t.name.split(":")[0])
        for t in model.inputs
    ]
    out_name = model.output_names[0]

    if len(specs) == 1:
        @tf.function(input_signature=specs)
        def serve(x):
            return {out_name: model(x, training=False)}
    else:
        @tf.function(input_signature=specs)
        def serve(*xs):
            return {out_name: model(list(xs), training=False)}

    return serve.get_concrete_function()


def converter_for(
    model: tf.keras.Model,
    qcfg: QuantizationConfig,
    representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
    xnnpack_form: bool = True,
) -> tf.lite.TFLiteConverter:
    """A TFLite converter set up for ``qcfg``. ``int8`` needs representative data.

    Full-integer files get PReLU in the form XNNPACK runs in int8
    (:func:`~tfface.models.layers.xnnpack_int8_form`; same function): as a PRELU op
    every PReLU left XNNPACK's graph, which made int8 SRGAN only 2.3× faster than
    float instead of 4.3× (benchmarks/tflite_latency.py)."""
    if qcfg.full_integer and xnnpack_form:
        from tfface.models.layers import xnnpack_int8_form

        model = xnnpack_int8_form(model)
    fn = serving_function(model)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    if qcfg.mode == "float":
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if qcfg.mode == "fp16":
        conv.target_spec.supported_types = [tf.float16]
    elif qcfg.full_integer:
        if representative is None:
            raise ValueError("int8 quantization needs representative data from the pipeline")
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = IO_TYPES[qcfg.io]
        conv.inference_output_type = IO_TYPES[qcfg.io]
    return conv


def representative_from(batches: Iterable[np.ndarray | list[np.ndarray]]) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Wrap an iterable of model inputs as the converter's ``representative_dataset``."""
    cached = [list(b) if isinstance(b, (list, tuple)) else [b] for b in batches]
    if len(cached) < 1:
        raise ValueError("no representative samples were produced")

    def gen() -> Iterator[list[np.ndarray]]:
        for b in cached:
            yield [np.asarray(x, np.float32) for x in b]

    return gen
