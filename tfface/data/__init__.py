"""Face data: clean-face sources, damage synthesis and the tf.data pipeline.

Contracts (see DESIGN.md):

* A *source* (:mod:`tfface.data.sources`) yields dicts with ``image`` (uint8
  ``[S, S, 3]`` RGB, center-cropped square, resized to ``cfg.data.image_size``),
  ``landmarks`` (float32 ``[5, 2]``: left eye, right eye, nose, left mouth corner,
  right mouth corner as ``(x, y)`` fractions of the square) and ``index`` (int64: the
  element's position in the split's stream; every random choice of synthesis derives
  from ``(cfg.data.seed, index)``).
* :func:`tfface.data.pipeline.make_dataset` turns a source into batches of float32
  dicts in ``[-1, 1]``: ``clean`` always, plus ``occluded`` and ``mask`` (1 = hole,
  ``[B, S, S, 1]``) and ``occlusion`` (int32 generator id) for inpainting, or ``lr``
  for super-resolution.
"""
