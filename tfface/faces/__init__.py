"""Finding and framing faces in real photos (restoring them is :mod:`tfface.restore`).

* :mod:`tfface.faces.detect` — one detector interface (boxes, five landmarks, score):
  MTCNN (default) and BlazeFace.
* :mod:`tfface.faces.align` — the similarity transform to the canonical template of the
  training crops (``template.json``), the crop, the feathered weights, the paste-back.
* :mod:`tfface.faces.track` — faces followed across the frames of a video.
* :mod:`tfface.faces.prepare` — photos to aligned training crops.
"""

from tfface.faces.detect import (DETECTORS, BlazeFaceDetector, DetectorError, Face,  # noqa: F401
                                 MTCNNDetector, make_detector)
