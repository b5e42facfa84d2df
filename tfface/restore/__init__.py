"""Restoring photos and videos with a trained model (the ``tfface-restore`` path).

* :mod:`tfface.restore.model` — :class:`~tfface.restore.model.FaceModel`, the interface
  the photo path asks of a model, and :class:`~tfface.restore.model.Restorer` (a run's
  Keras generator or a ``.tflite`` file with its card; several sizes as a ladder).
* :mod:`tfface.restore.photo` — :class:`~tfface.restore.photo.FacePipeline`: every
  face of a photo found, aligned, restored and pasted back; :func:`restore_image`.
* :mod:`tfface.restore.square` — the square fallback (``--center`` or an OpenCV
  detector file): one square crop a photo, no alignment.
* :mod:`tfface.restore.sr` — super-resolution of whole photos: tiles, faces at their
  own resolution (:class:`~tfface.restore.sr.NativeSRPipeline`).
* :mod:`tfface.restore.locate` — :func:`~tfface.restore.locate.make_locator`: which of
  those finds the faces for a given model (SR, occlusion removal with the segmenter, the
  square fallback).
* :mod:`tfface.restore.video` — video files in and out (H.264 through ffmpeg) and
  :func:`~tfface.restore.video.restore_clip`.

Finding and framing faces is :mod:`tfface.faces` (which never imports this package);
the occluder segmenter is :mod:`tfface.segmenter`.
"""
