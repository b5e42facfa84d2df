"""Occlusion synthesis: hole masks and their fill, as stateless, seeded TensorFlow ops.

Every function here is pure TensorFlow (no NumPy callbacks, no per-pixel Python
loops) and *stateless*: the output depends only on the ``seed`` tensor (int32/int64,
shape ``[2]``) and the arguments. The same seed gives the same mask eagerly, inside
``tf.function`` and inside ``Dataset.map(..., num_parallel_calls=...)``, which is what
makes eval splits, calibration sets and bug reports reproducible bit for bit.

Registry
--------
``OCCLUSIONS`` maps a generator name to ``fn(seed, size, landmarks) -> mask`` where
``seed`` is an int tensor ``[2]``, ``size`` a Python int (the square's side),
``landmarks`` float32 ``[5, 2]`` (x, y fractions: left eye, right eye, nose, left
mouth corner, right mouth corner) and ``mask`` float32 ``[size, size, 1]`` with values
exactly 0 or 1 (1 = hole).

``OCCLUSION_IDS`` gives every generator a *stable* int32 id (the ``occlusion`` field
of a dataset element). Ids are assigned at registration and never reused, so adding
a generator later does not renumber the existing ones (which sorting names would do).

``FILLS`` optionally maps a generator name to ``fn(seed, size, image, landmarks) ->
float32 [size, size, 3]`` in ``[0, 255]``, for occluders with their own texture
(sunglasses, face masks); generators without an entry are filled with
:func:`noise_fill`, the CelebA-C fill.

Add a generator with :func:`register_occlusion` in a module of this package, and
import that module below (the import order is the registration order).

Rendering
---------
All current shapes are unions of axis-aligned rectangles, drawn with separable 1-D
interval tests: for ``N`` rectangles, row indicators ``R [N, S]`` and column
indicators ``C [N, S]`` give the union as ``R^T @ C > 0``, one small matmul
(``O(N·S²)`` multiply-adds, exact because the summands are 0/1) instead of ``N``
full-size distance fields. A pixel ``(x, y)`` is inside ``[x0, x1] × [y0, y1]``
when its center ``(x + 0.5, y + 0.5)`` is.

Modules
-------
:mod:`~tfface.data.occlusion.core` (registry, types, seeds, fill options),
:mod:`~tfface.data.occlusion.raster` (rectangles and row spans → masks),
:mod:`~tfface.data.occlusion.celeba_c` (``celeba_c``, ``boxes``, the noise fill),
:mod:`~tfface.data.occlusion.strokes` (``strokes_*``),
:mod:`~tfface.data.occlusion.irregular` (the mask bank),
:mod:`~tfface.data.occlusion.frame` (face coordinates),
:mod:`~tfface.data.occlusion.facemask`, :mod:`~tfface.data.occlusion.eyewear`
(``sunglasses``, ``eye_bar``), the photo-like occluders
:mod:`~tfface.data.occlusion.realmask` (``realmask``, ``realmask_unseen``),
:mod:`~tfface.data.occlusion.wearables` (``scarf``, ``hair``),
:mod:`~tfface.data.occlusion.hands` (``hand_unseen``),
:mod:`~tfface.data.occlusion.skin` (``skin_hand``: hands in the face's own skin, for
training) with their shared
:mod:`~tfface.data.occlusion.appearance` (fabrics, the photo's light, shading),
:mod:`~tfface.data.occlusion.photo` (:func:`photo_conditions` of the whole photo) and
:mod:`~tfface.data.occlusion.mixture` (:func:`check_mixture`, :func:`make_occlusion_fns`,
:func:`occlude`).

Held out
--------
``HELD_OUT`` names the generators kept for evaluation only (``realmask_unseen``: the
``KN95`` and ``cloth`` template families; ``hand_unseen``: hands and phones). No other
generator draws those templates or that family, so figures on them measure occluders
a model never saw; keep them out of training mixtures.
"""

from __future__ import annotations

# noqa: F401 throughout: the package's public names (private helpers stay in their modules).
# The generator modules are imported in registration order (ids 0-14), which is the
# iteration order of OCCLUSIONS: keep it when adding one.
from tfface.data.occlusion.core import (  # noqa: F401
    FACTORIES, FILL_KINDS, FILLS, HELD_OUT, OCCLUSION_IDS, OCCLUSIONS, Factory, FillFn, MaskFn,
    Occluder, register_occlusion, solid_fill,
)
from tfface.data.occlusion.raster import (  # noqa: F401
    cap_area, capsule_spans, rect_spans, rects_to_mask, spans_to_mask,
)
from tfface.data.occlusion.celeba_c import (  # noqa: F401
    BOXES_MAX, BOXES_SIDE, CELEBA_C_LENGTH, CELEBA_C_NUM_LINES, CELEBA_C_REF_WIDTH,
    CELEBA_C_SQUARE, CELEBA_C_WIDTH, NOISE_MEAN, NOISE_STD, boxes, celeba_c, celeba_c_walk,
    noise_fill, noise_values,
)
from tfface.data.occlusion.strokes import (  # noqa: F401
    STROKE_MAX_AREA, STROKE_PRESETS, STROKE_REF_SIZE, STROKE_SEGMENTS, free_form_mask,
    free_form_walk, strokes_medium, strokes_thick, strokes_thin,
)
from tfface.data.occlusion.irregular import (  # noqa: F401
    IRREGULAR_BIN_WIDTH, IRREGULAR_DEFAULTS, MASK_EXTENSIONS, irregular, irregular_from_bank,
    load_mask_bank,
)
from tfface.data.occlusion.facemask import (  # noqa: F401
    FACEMASK_ANCHORS, FACEMASK_DEFAULTS, FACEMASK_STRAP, FACEMASK_STYLES, facemask,
    facemask_procedural, facemask_procedural_fill, facemask_template_warp,
    load_facemask_templates,
)
from tfface.data.occlusion.eyewear import (  # noqa: F401
    EYE_BAR_COLORS, SUNGLASS_FRAMES, SUNGLASS_TINTS, eye_bar, eye_bar_fill, sunglasses,
    sunglasses_fill,
)
from tfface.data.occlusion.realmask import (  # noqa: F401
    LOOKS, REALMASK_DEFAULTS, TEMPLATE_STYLE, UNSEEN_TEMPLATE_FAMILIES, RealMasks,
    available_templates, realmask, realmask_unseen, split_templates, template_family,
)
from tfface.data.occlusion.wearables import (  # noqa: F401
    HAIR_COLOURS, SCARF_KINDS, hair, hair_fill, scarf, scarf_fill,
)
from tfface.data.occlusion.hands import hand_fill, hand_unseen  # noqa: F401
from tfface.data.occlusion.skin import (  # noqa: F401
    POSES as SKIN_HAND_POSES, SKIN_HAND_DEFAULTS, own_skin, skin_hand, skin_hand_fill,
)
from tfface.data.occlusion.photo import (  # noqa: F401
    PHOTO_CONDITION_PROBA, PHOTO_CONDITIONS, photo_conditions,
)
from tfface.data.occlusion.mixture import (  # noqa: F401
    check_mixture, default_occluders, make_occlusion_fns, occlude,
)
