"""The occluder segmenter: the small U-Net that finds what covers a face, so restore
knows the hole without a drawn mask.

* :mod:`tfface.segmenter.model` — the network, a run's settings
  (:class:`~tfface.segmenter.model.SegmenterConfig`), the loss, loading a run folder
  and reading a converted file's weights back.
* :mod:`tfface.segmenter.data` — its training batches: real faces damaged by the
  occlusion synthesis, jittered and photometrically changed.
* :mod:`tfface.segmenter.train` — training, resumable, under the run lock, with atomic
  writes and a finite check.
* :mod:`tfface.segmenter.infer` — :class:`~tfface.segmenter.infer.OccluderSegmenter`:
  the hole in an aligned face crop (``.tflite`` file or run folder).
* :mod:`tfface.segmenter.export` — int8/fp16 files with their model cards, scores on
  held-out faces and samples.

The command lines are ``python -m pipelines.train_segmenter`` and
``python -m pipelines.export_segmenter``. It reads the framing from
:mod:`tfface.framing` and aligns sample faces with :mod:`tfface.faces`; it never
imports :mod:`tfface.restore`, which uses it.
"""
