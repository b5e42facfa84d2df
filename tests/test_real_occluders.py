"""Photo-like occluders (realmask, scarf, hair, hand_unseen), the held-out split, photo
conditions, and the remnant measures of restorations."""

from __future__ import annotations

import numpy as np
import pytest

import tfface  # noqa: F401  (before tensorflow: selects tf_keras)
import tensorflow as tf

from tfface.config import DataConfig
from tfface.data import occlusion as occ
from tfface.data.occlusion import appearance as ap
from tfface.faces.align import TEMPLATE

LM = np.asarray(TEMPLATE, np.float32)
NEW = ("realmask", "scarf", "hair", "hand_unseen")


def _seed(i: int, j: int = 7) -> tf.Tensor:
    return tf.constant([i, j], tf.int64)


def _cfg(size=64, **kw) -> DataConfig:
    d = DataConfig(image_size=size)
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def _face(size=64, seed=0) -> tf.Tensor:
    """A skin-toned face-ish image with a white patch (the photo's white point)."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), (190, 150, 125), np.float32) + rng.normal(0, 6, (size, size, 3))
    img[: size // 4, : size // 4] = 245.0  # 6 % of the pixels: above the 97th percentile
    return tf.constant(np.clip(img, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- template folder

# MaskTheFace's 21 templates (7 families x 3 poses) and two of its anchor layouts:
# frontal, and one whose anchors lie beyond the picture (its gas_left / gas_right).
FAMILIES = ("surgical", "surgical_blue", "surgical_green", "cloth", "KN95", "N95", "gas")
ALL_TEMPLATES = [f + p for f in FAMILIES for p in ("", "_left", "_right")]
INSIDE = ("mask_a: 8, 60\nmask_b: 200, 12\nmask_c: 392, 60\nmask_d: 40, 200\nmask_e: 200, 292\n"
          "mask_f: 360, 200\n")
OUTSIDE = ("mask_a: 8, 60\nmask_b: 200, 12\nmask_c: 470, 60\nmask_d: 40, 200\nmask_e: 200, 292\n"
           "mask_f: 460, 200\n")  # c and f beyond the 400 px picture


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory):
    """Every MaskTheFace template name, each a 400x300 RGBA shape of its family's own
    colour (gas_left / gas_right with anchors beyond the picture, as in MaskTheFace)."""
    import cv2

    d = tmp_path_factory.mktemp("realmask_templates")
    cfg = []
    for i, name in enumerate(ALL_TEMPLATES):
        rgba = np.zeros((300, 400, 4), np.uint8)
        cv2.ellipse(rgba, (200, 110), (195, 185), 0, 0, 180, (40 + 8 * i, 120, 200, 255), -1)
        rgba[10:110, 5:395] = (40 + 8 * i, 120, 200, 255)
        if occ.template_family(name) == "cloth":
            rgba[..., :3] = np.where(rgba[..., 3:] > 0, 30, 0)  # a black cloth mask
        cv2.imwrite(str(d / f"{name}.png"), rgba)
        anchors = OUTSIDE if name in ("gas_left", "gas_right") else INSIDE
        cfg.append(f"[{name}]\ntemplate: masks/templates/{name}.png\n{anchors}")
    (d / "masks.cfg").write_text("\n".join(cfg) + "\n[empty]\n")
    return str(d)


def test_split_templates_is_a_third_by_whole_families():
    train, unseen = occ.split_templates(ALL_TEMPLATES)
    poses = ("", "_left", "_right")
    assert sorted(unseen) == sorted(f + p for f in ("KN95", "cloth") for p in poses)
    assert len(train) == 15 and set(train) | set(unseen) == set(ALL_TEMPLATES)
    assert not {occ.template_family(n) for n in train} & {occ.template_family(n) for n in unseen}


def test_training_and_unseen_generators_draw_disjoint_templates(template_dir):
    train = occ.RealMasks(template_dir, 64, "train")
    unseen = occ.RealMasks(template_dir, 64, "unseen")
    assert not set(train.names) & set(unseen.names)
    assert {occ.template_family(n) for n in unseen.names} == {"KN95", "cloth"}
    assert {occ.template_family(n) for n in train.names} == {
        "surgical", "surgical_blue", "surgical_green", "N95", "gas"}
    assert train.skipped == unseen.skipped == ["gas_left", "gas_right"]  # anchors off the picture
    # the registered factories build exactly these two splits
    gens = occ.make_occlusion_fns(_cfg(facemask_dir=template_dir), ["realmask", "realmask_unseen"])
    tpl = occ.RealMasks(template_dir, 64, "train", template_proba=0.5)
    for i in range(6):
        np.testing.assert_array_equal(gens["realmask"].mask(_seed(i), 64, LM),
                                      tpl.mask(_seed(i), 64, LM))
        np.testing.assert_array_equal(gens["realmask_unseen"].mask(_seed(i), 64, LM),
                                      unseen.mask(_seed(i), 64, LM))


def test_held_out_generators_stay_out_of_training_defaults():
    from tfface.segmenter.model import SEGMENTER_MIXTURE

    assert occ.HELD_OUT == {"realmask_unseen", "hand_unseen"}
    assert not occ.HELD_OUT & set(DataConfig().occlusions)
    assert not occ.HELD_OUT & set(SEGMENTER_MIXTURE)
    # ids are stable: the new generators follow the nine earlier ones
    assert [occ.OCCLUSION_IDS[n] for n in ("realmask", "realmask_unseen", "scarf", "hair",
                                           "hand_unseen")] == [9, 10, 11, 12, 13]


def test_realmask_unseen_needs_its_folder(tmp_path, template_dir):
    with pytest.raises(ValueError, match="realmask_unseen' needs the MaskTheFace template folder"):
        occ.make_occlusion_fns(_cfg(), ["realmask_unseen"])
    with pytest.raises(ValueError, match="needs the MaskTheFace template folder"):
        occ.occlude(_face(), LM, _seed(0), {"realmask_unseen": 1.0})
    only_train = tmp_path / "surgical_only"
    only_train.mkdir()
    import shutil

    shutil.copy(f"{template_dir}/surgical.png", only_train / "surgical.png")
    (only_train / "masks.cfg").write_text(f"[surgical]\ntemplate: surgical.png\n{INSIDE}")
    with pytest.raises(ValueError,
                       match=r"no usable template of the held-out families \(KN95, cloth\)"):
        occ.make_occlusion_fns(_cfg(facemask_dir=str(only_train)), ["realmask_unseen"])
    with pytest.raises(ValueError, match="unknown option"):
        occ.make_occlusion_fns(_cfg(occlusion_options={"realmask": {"colour": 1}}), ["realmask"])
    with pytest.raises(ValueError, match="template_proba must be in"):
        occ.make_occlusion_fns(_cfg(occlusion_options={"realmask": {"template_proba": 2}}),
                               ["realmask"])


# --------------------------------------------------------------------------- determinism, fills


@pytest.mark.parametrize("name", NEW + ("realmask_unseen",))
def test_fill_is_deterministic_and_in_range(name, template_dir):
    gens = occ.make_occlusion_fns(_cfg(facemask_dir=template_dir), [name])
    # a green "face": no fabric, hair or phone colour is within 12 levels of it
    img = tf.constant(np.tile(np.array([40, 200, 60], np.uint8), (64, 64, 1)))
    outs = [occ.occlude(img, LM, _seed(i), {name: 1.0}, gens) for i in range(3)]
    eager = np.stack([o["occluded"].numpy() for o in outs])
    ds = tf.data.Dataset.range(3).map(
        lambda i: occ.occlude(img, LM, tf.stack([i, tf.constant(7, tf.int64)]), {name: 1.0},
                              gens)["occluded"], num_parallel_calls=2, deterministic=True)
    np.testing.assert_array_equal(eager, np.stack(list(ds.as_numpy_iterator())))
    assert eager.min() >= 0 and eager.max() <= 255
    masks = np.stack([o["mask"].numpy() for o in outs])
    assert set(np.unique(masks)) <= {0.0, 1.0} and all(m.sum() > 0 for m in masks)
    # the occluder is drawn, not the face: most hole pixels differ from the input (a
    # hand may take the face's own skin colour, so it is left out)
    if name != "hand_unseen":
        hole = masks[..., 0] > 0.5
        diff = np.abs(eager - img.numpy()[None].astype(np.float32)).max(-1)
        assert (diff[hole] > 12).mean() > 0.5


def test_lower_face_occluders_cover_mouth_not_eyes():
    px = (LM * 128).astype(int)
    mouth = LM[3:].mean(0) * 128
    for name in ("realmask", "scarf", "hand_unseen"):
        covered = 0
        for i in range(12):
            m = occ.OCCLUSIONS[name](_seed(i), 128, LM).numpy()[..., 0]
            covered += m[int(mouth[1]), int(mouth[0])] == 1
            if name != "hand_unseen":  # a hand's fingers may reach up over an eye
                assert m[px[0, 1], px[0, 0]] == 0 and m[px[1, 1], px[1, 0]] == 0, (name, i)
        assert covered >= 11, (name, covered)  # a mask worn low may leave the upper lip


def test_hair_falls_over_an_eye_and_is_thin():
    eyes = LM[:2] * 128
    near, fracs = 0, []
    yy, xx = np.mgrid[:128, :128] + 0.5
    for i in range(20):
        m = occ.OCCLUSIONS["hair"](_seed(i), 128, LM).numpy()[..., 0]
        d = np.min([np.hypot(xx - x, yy - y) for x, y in eyes], axis=0)
        near += m[d < 0.25 * 128 * (LM[1, 0] - LM[0, 0])].any()
        fracs.append(m.mean())
    assert near >= 18
    assert 0.003 < np.mean(fracs) < 0.08  # strands, not a block


def test_looks_and_dark_palette():
    lum = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]  # noqa: E731
    assert all(lum(c) < ap.DARK_LUMINANCE for c in ap.DARK_FABRICS)
    assert all(lum(c) >= ap.DARK_LUMINANCE for c in ap.LIGHT_FABRICS)
    rm = occ.RealMasks(None, 64, "train")
    img = tf.cast(_face(), tf.float32)
    by_look: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for i in range(60):
        look = int(rm.look(_seed(i)))
        m = rm.mask(_seed(i), 64, LM).numpy()[..., 0] > 0.5
        fill = rm.fill(_seed(i), 64, img, LM).numpy()
        by_look[look].append(float(np.median(lum(np.moveaxis(fill[m], -1, 0)))))
    assert all(len(v) >= 5 for v in by_look.values()), {k: len(v) for k, v in by_look.items()}
    # black masks are drawn dark, plain light ones are not (shading spreads the values)
    assert max(by_look[1]) < 80 and np.median(by_look[0]) > 100


def test_template_look_keeps_a_black_template_black(template_dir):
    unseen = occ.RealMasks(template_dir, 64, "unseen")
    cloth = [i for i, n in enumerate(unseen.names) if occ.template_family(n) == "cloth"]
    assert np.asarray(unseen.dark).tolist() == [i in cloth for i in range(len(unseen.names))]


def test_photo_light_dims_objects_in_dark_photos():
    bright = tf.cast(_face(), tf.float32)
    dark = bright * 0.4
    lb, ld = ap.photo_light(bright, 64), ap.photo_light(dark, 64)
    assert abs(float(lb["exposure"]) - 245.5 / 235) < 1e-4  # the white patch: 245 → bin 245.5
    assert abs(float(ld["exposure"]) - 98.5 / 235) < 1e-4
    rm = occ.RealMasks(None, 64, "train")
    m = rm.mask(_seed(3), 64, LM).numpy()[..., 0] > 0.5
    fb = rm.fill(_seed(3), 64, bright, LM).numpy()[m].mean()
    fd = rm.fill(_seed(3), 64, dark, LM).numpy()[m].mean()
    assert 0.3 < fd / fb < 0.5


def test_photo_conditions_apply_the_same_change_to_every_image():
    a, b = tf.cast(_face(seed=1), tf.float32), tf.cast(_face(seed=2), tf.float32)
    none, flags = occ.photo_conditions(_seed(0), [a, b], proba=(0, 0, 0, 0))
    np.testing.assert_array_equal(none[0], a)
    assert not any(bool(v) for v in flags.values())
    out, flags = occ.photo_conditions(_seed(0), [a, a, b], proba=(1, 1, 1, 1))
    assert all(bool(v) for v in flags.values())
    np.testing.assert_array_equal(out[0], out[1])  # the same noise and blur on both
    x = out[2].numpy()
    assert x.min() >= 0 and x.max() <= 255
    assert x[..., :2].std() > 0 and np.abs(x[4:-4, 4:-4, 0] - x[4:-4, 4:-4, 1]).max() < 1e-3
    assert x.mean() < 0.7 * b.numpy().mean()  # low light
    ds = tf.data.Dataset.range(1).map(lambda i: occ.photo_conditions(_seed(0), [a, b])[0][1])
    np.testing.assert_array_equal(next(iter(ds)).numpy(),
                                  occ.photo_conditions(_seed(0), [a, b])[0][1].numpy())


# --------------------------------------------------------------------------- remnants


def _levels(x) -> np.ndarray:
    """8-bit levels → the [-1, 1] floats the evaluation takes (exact after rounding)."""
    return np.asarray(x, np.float64) / 127.5 - 1.0


def test_remnant_measures_exact_values():
    from tfface.evaluation import REMNANT_LEVELS, clean_changed, hole_remnant

    assert REMNANT_LEVELS == 12
    occluded = np.full((2, 2, 4, 3), 100.0)
    mask = np.zeros((2, 2, 4, 1))
    mask[0, 0, :] = 1  # image 0: a hole of 4 pixels (the first row)
    pred = occluded.copy()
    pred[0, 0, 0] = (112, 100, 100)  # +12 on one channel: still the occluder
    pred[0, 0, 1] = (100, 113, 100)  # +13: replaced
    pred[0, 0, 2] = (50, 50, 50)  # replaced
    # pred[0, 0, 3] unchanged: still the occluder
    pred[0, 1, 0] = (100, 100, 87)  # -13 on a clean pixel: changed
    pred[0, 1, 1] = (88, 100, 100)  # -12: not changed
    mask[1] = 1  # image 1: all hole, all replaced
    pred[1] = 0.0
    hr = hole_remnant(_levels(occluded), _levels(pred), mask)
    cc = clean_changed(_levels(occluded), _levels(pred), mask)
    np.testing.assert_allclose(hr, [2 / 4, 0.0])
    assert cc[0] == pytest.approx(1 / 4) and np.isnan(cc[1])  # no clean pixel in image 1
    mask[1] = 0  # no hole: the remnant is undefined, nothing clean changed... but all did
    hr = hole_remnant(_levels(occluded), _levels(pred), mask)
    assert np.isnan(hr[1]) and clean_changed(_levels(occluded), _levels(pred), mask)[1] == 1.0


def test_evaluate_reports_remnants_per_occlusion():
    from tfface.evaluation import damaged_input, evaluate, opencv_inpaint

    rng = np.random.default_rng(0)
    clean = rng.uniform(-1, 1, (4, 32, 32, 3))
    mask = np.zeros((4, 32, 32, 1))
    mask[:, 8:20, 10:22] = 1
    occluded = np.where(mask > 0.5, 0.9, clean)
    batch = {"clean": clean, "occluded": occluded, "mask": mask,
             "occlusion": np.array([9, 9, 13, 13]), "index": np.arange(4)}
    ns = opencv_inpaint("ns")

    def blind(b):  # replaces the hole like NS, and also paints a 4x4 corner of the face white
        out = ns(b).copy()
        out[:, :4, :4] = 1.0
        return out

    s = evaluate({"blind": blind, "copy": damaged_input}, [batch])
    assert s["copy"]["overall"]["hole_remnant"] == 1.0
    assert s["copy"]["overall"]["clean_changed"] == 0.0
    assert s["opencv_ns"]["overall"]["clean_changed"] == 0.0
    assert s["opencv_ns"]["overall"]["hole_remnant"] < 0.2
    assert set(s["blind"]["by_occlusion"]) == {"realmask", "hand_unseen"}
    # the corner: 16 of the 32*32 - 12*12 = 880 clean pixels; white (255) changes a pixel
    # unless every channel is at 243 or above
    from tfface.metrics import to_uint8_levels

    corner = to_uint8_levels(clean[:, :4, :4]).numpy()
    moved = (corner.min(-1) < 243).sum((1, 2)) / 880
    assert s["blind"]["by_occlusion"]["hand_unseen"]["clean_changed"] == pytest.approx(
        moved[2:].mean(), abs=1e-9)


def test_evaluate_report_has_a_remnant_section():
    from pipelines import evaluate as cli

    row = {"images": 2, **{k: 0.5 for k in cli.METRICS_SHOWN}, "hole_remnant": 0.125,
           "clean_changed": 0.0025}
    summary = {"overall": row, "by_occlusion": {"realmask_unseen": row},
               "by_area_bin": {"10-20%": row}}
    cfg = type("C", (), {"data": type("D", (), {"task": "inpaint", "image_size": 32})()})()
    md = cli._markdown({"images": 2, "data": "x"}, {"keras": summary}, cfg, "runs/x", [])
    part = md.split("## Remnants")[1]
    assert "| keras | 2 | 0.125 | 0.0025 |" in part and "**realmask_unseen**" in part


def test_hand_unseen_says_which_seeds_draw_a_hand_for_the_benchmark_split():
    """benchmarks/segmenter_robustness.py reports hands and phones apart by this split."""
    from benchmarks.segmenter_robustness import _kind
    from tfface.data.occlusion import hands

    seeds = [tf.constant([7, i], tf.int64) for i in range(40)]
    kinds = [_kind("hand_unseen", s, None) for s in seeds]
    assert kinds == ["hand" if bool(hands.draws_hand(s)) else "phone" for s in seeds]
    assert 0.4 < kinds.count("hand") / len(kinds) < 0.8  # 60 % hands by construction
