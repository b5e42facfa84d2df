"""The identity term of training: one factory, two networks.

``train.identity_student`` names the network that judges whether the restored face is
still the same person: ``"dlib"`` is dlib's own ResNet rebuilt in Keras
(:func:`tfface.identity.dlib_resnet.identity_loss_fn`: aligned, blurred, jittered
chips), a folder is a distilled student (:func:`tfface.identity.student.student_loss_fn`).
Training asks this module only (:func:`make_identity_fn`).
"""

from __future__ import annotations

from tfface.config import Config, ConfigError

DLIB = "dlib"
"""``train.identity_student`` value naming dlib's own network
(:mod:`tfface.identity.dlib_resnet`)."""


def make_identity_fn(cfg: Config):
    """The identity term of ``cfg`` (its ``train.identity_student``), or None when off.

    Raises:
        ConfigError: the student folder is missing or not a student's, or dlib's network
            is asked for but its package is missing.
    """
    t = cfg.train
    if t.identity_weight <= 0:
        return None
    if t.identity_student == DLIB:
        from tfface.identity import dlib_resnet
        from tfface.identity.verify import IdentityError

        try:
            return dlib_resnet.identity_loss_fn()
        except (IdentityError, dlib_resnet.DlibResNetError) as e:
            raise ConfigError(f"train.identity_student: {e}") from None
    from tfface.identity.student import StudentError, load_student, student_loss_fn

    try:
        student = load_student(t.identity_student)
    except StudentError as e:
        raise ConfigError(f"train.identity_student: {e}") from None
    size = int(student.input_shape[1])
    if size != int(cfg.data.image_size):
        raise ConfigError(f"train.identity_student reads {size} px faces, but this run's "
                          f"data.image_size is {cfg.data.image_size}")
    return student_loss_fn(student)
