"""Who is in a face: the identity subsystem.

- :mod:`~tfface.identity.verify`: face embedders (dlib's ResNet descriptor through dlib,
  :data:`~tfface.identity.verify.EMBEDDERS`), the verification protocol (pairs,
  thresholds, the identities table) that scores restored faces against other photos of
  the same person (``pipelines.evaluate --identity``).
- :mod:`~tfface.identity.dlib_resnet`: dlib's face ResNet rebuilt in Keras from its own
  weights, as a perceptual/identity loss and for the chip alignment.
- :mod:`~tfface.identity.student`: the identity student, a small Keras network distilled
  from the descriptor, and its loss.
- :mod:`~tfface.identity.loss`: the one identity-loss factory training reads
  (``train.identity_student``: dlib's network or a student).
"""
