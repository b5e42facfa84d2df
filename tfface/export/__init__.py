"""From a trained run to shippable ``.tflite`` files: the library behind ``tflite/``.

- :mod:`~tfface.export.quantize`: the quantization modes as one config object and the
  TFLite converter each mode needs.
- :mod:`~tfface.export.selective`: int8 files with chosen layers kept in float.
- :mod:`~tfface.export.qat`: quantization-aware fine-tuning and pruning (they train with
  the run's own trainer: the one path from here into :mod:`tfface.train`).
- :mod:`~tfface.export.convert`: convert a generator, measure the file and write it with
  its model card, under the output folder's conversion lock.
- :mod:`~tfface.export.android`: a file with sample inputs and expected outputs for apps.
- :mod:`~tfface.export.metadata`: what a file says about itself (ops, runtime version).
- :mod:`~tfface.export.harness`: latency, memory, XNNPACK partitions, per-op profiles.
- :mod:`~tfface.export.validate`: fidelity, quality and latency of files, and their gates.
- :mod:`~tfface.export.blind`: the occluder segmenter and a keep-known inpainter as one int8
  file that decides its own hole (``python -m pipelines.export_blind``).

``python -m tflite.convert`` and ``python -m tflite.validate`` are the command lines.
"""
