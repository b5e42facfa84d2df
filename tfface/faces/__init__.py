"""The real-photo path: find faces, align them, restore them and paste them back.

* :mod:`tfface.faces.detect` — one detector interface (boxes, five landmarks, score):
  MTCNN (default) and BlazeFace.
* :mod:`tfface.faces.align` — the similarity transform to the canonical template of the
  training crops (``template.json``), the crop, the feathered weights, the paste-back.
* :mod:`tfface.faces.segmenter` — the occluder segmenter (training and inference).
* :mod:`tfface.faces.pipeline` — :class:`FacePipeline`: every face of a photo restored
  in place.
"""

from tfface.faces.detect import (DETECTORS, BlazeFaceDetector, DetectorError, Face,  # noqa: F401
                                 MTCNNDetector, make_detector)
from tfface.faces.pipeline import FacePipeline, PhotoReport  # noqa: F401
