"""The layering of the code base (docs/architecture.md), checked from the source.

The library (``tfface``) never imports the apps built on it (``tflite``,
``pipelines``, ``benchmarks``, ``web_demo``), not even lazily inside a function;
reading a run directory or a model card does not load the training engine; and no
module or function grows past the size a reader can hold in mind.
"""

from __future__ import annotations

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = ("tflite", "pipelines", "benchmarks", "web_demo")
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 120


def _modules(*packages: str) -> list[str]:
    """Repository-relative paths of every ``.py`` file under ``packages``."""
    out = []
    for pkg in packages:
        for folder, _, files in os.walk(os.path.join(ROOT, pkg)):
            out += [os.path.relpath(os.path.join(folder, f), ROOT).replace(os.sep, "/")
                    for f in files if f.endswith(".py")]
    return sorted(out)


def _module_name(path: str) -> str:
    name = path[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _package(path: str) -> str:
    """The package relative imports in ``path`` start from."""
    name = _module_name(path)
    return name if path.endswith("__init__.py") else name.rpartition(".")[0]


def _imported(tree: ast.AST, package: str, top_level_only: bool = False):
    """``(line, module name)`` of every import in ``tree`` (inside functions too unless
    ``top_level_only``), including ``importlib.import_module("...")`` and
    ``__import__("...")`` with a literal name; relative imports are resolved against
    ``package`` (the package the module is in, or the package itself for __init__)."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:  # ``from pkg import submodule``
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def app_imports(source: str, package: str) -> list[str]:
    """``"line N imports X"`` for every import of an app package in ``source``."""
    return [f"line {line} imports {name}" for line, name in _imported(ast.parse(source), package)
            if name.split(".")[0] in APPS]


def test_the_app_import_check_sees_imports_hidden_in_functions():
    """The check below can fail: it finds a lazy import and import_module, and resolves
    relative imports."""
    source = ("import os\n"
              "def f():\n"
              "    from tflite.harness import LiteRunner\n"
              "    import importlib\n"
              "    return importlib.import_module('pipelines.train')\n")
    assert app_imports(source, "tfface") == ["line 3 imports tflite.harness",
                                             "line 3 imports tflite.harness.LiteRunner",
                                             "line 5 imports pipelines.train"]
    assert app_imports("from tfface.lite import LiteRunner\n", "tfface") == []
    relative = ast.parse("from .lite import LiteRunner\nfrom .. import config\n")
    assert [n for _, n in _imported(relative, "tfface.train")] == [
        "tfface.train.lite", "tfface.train.lite.LiteRunner", "tfface", "tfface.config"]


@pytest.mark.parametrize("path", _modules("tfface"))
def test_the_library_never_imports_the_apps(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        found = app_imports(f.read(), _package(path))
    assert not found, (f"{path} (library) imports an app package: {'; '.join(found)}. "
                       "Move what it needs into tfface/ (docs/architecture.md)")


def _import_closure(start: str, skip: tuple[str, ...] = ()) -> set[str]:
    """Modules of this repository that ``start`` can load: every import, those inside
    functions too, followed transitively (with the packages above each module);
    modules in ``skip`` are not entered."""
    paths = {_module_name(p): p for p in _modules("tfface", "tflite", "pipelines")}
    seen, todo = set(), [start]
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):  # a module loads every package above it
            mod = ".".join(parts[:i])
            if mod in paths and mod not in seen and mod not in skip:
                seen.add(mod)
                with open(os.path.join(ROOT, paths[mod]), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                todo += [n for _, n in _imported(tree, _package(paths[mod]))]
    return seen


# QAT and pruning fine-tune the generator with the run's own trainer: the one
# deliberate path from the converter into the training engine.
_TRAINS = ("tfface.export.qat",)


@pytest.mark.parametrize("module", ["tfface.rundir", "tfface.cards", "tfface.lite",
                                    "tfface.restore.model", "tfface.restore.photo",
                                    "tfface.restore.video", "tfface.segmenter.infer",
                                    "tfface.evaluation",
                                    "tfface.export.convert", "tfface.export.validate",
                                    "tfface.export.harness", "tflite.convert", "tflite.validate",
                                    "pipelines.evaluate", "pipelines.restore"])
def test_reading_a_run_or_a_file_does_not_load_the_training_engine(module):
    """The converter, validator, evaluation and restoring read run directories through
    tfface.rundir and cards through tfface.cards, never through tfface.train."""
    loaded = _import_closure(module, skip=_TRAINS)
    assert module in loaded
    engine = sorted(m for m in loaded if m == "tfface.train" or m.startswith("tfface.train."))
    assert not engine, f"{module} can load the training engine: {', '.join(engine)}"


def test_the_closure_follows_lazy_imports_into_the_training_engine():
    """The check above can fail: QAT, imported lazily by the converter, trains."""
    assert "tfface.train.runner" in _import_closure("tfface.export.convert")
    assert "tfface.train.runner" in _import_closure("tflite.convert")
    assert "tfface.train.runner" in _import_closure("pipelines.train")


def _sizes(path: str) -> list[str]:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        source = f.read()
    problems = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        problems.append(f"{path} has {lines} lines (> {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                problems.append(f"{path}: {node.name} (line {node.lineno}) has {n} lines "
                                f"(> {MAX_FUNCTION_LINES})")
    return problems


@pytest.mark.parametrize("path", _modules("tfface", "pipelines", "tflite"))
def test_modules_and_functions_stay_readable(path):
    problems = _sizes(path)
    assert not problems, "; ".join(problems) + " - split it along its seams"


def _defines(path: str) -> set[str]:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("path", [p for p in _modules("tflite", "pipelines")
                                  if not p.endswith("__init__.py")])
def test_the_app_folders_hold_command_lines(path):
    """Every module of ``tflite/`` and ``pipelines/`` is a command line (a ``main``):
    code without one belongs in the library."""
    assert "main" in _defines(path), f"{path} is not a command line: move it into tfface/"


def test_the_converter_and_validator_are_library_modules():
    """tflite/ holds the two command lines only; converting, validating, timing and the
    Android export are tfface.export, which a Python caller uses without the apps."""
    assert _modules("tflite") == ["tflite/__init__.py", "tflite/convert.py", "tflite/validate.py"]
    assert {"convert_model", "convert_run", "refresh_card"} <= _defines("tfface/export/convert.py")
    assert {"validate_file", "check_samples"} <= _defines("tfface/export/validate.py")


def _reexports(path: str, root: str = ROOT) -> list[str]:
    """Names a module imports only to hand on (a ``noqa: F401`` on the import), with the
    line: the compatibility re-exports a move used to leave behind."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        source = f.read()
    lines = source.splitlines()
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and "noqa: F401" in lines[node.lineno - 1]:
            out += [f"line {node.lineno}: {a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("path", _modules("tfface", "pipelines", "tflite"))
def test_no_compatibility_re_exports(path):
    """A name lives in one module and is imported from there: only a package's
    ``__init__`` hands on names (its public ones), no module keeps names that moved away."""
    found = _reexports(path)
    if path.endswith("__init__.py"):
        found = [f for f in found if f.split(": ")[1].startswith("_")]
    assert not found, f"{path} re-exports {', '.join(found)}: import them where they live"


def test_the_re_export_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text("from a import (  # noqa: F401 - moved\n    b, _c)\n"
                                   "from d import e\n")
    assert _reexports("m.py", str(tmp_path)) == ["line 1: b", "line 1: _c"]


def test_every_test_file_has_a_layer():
    """tests/conftest.py marks each file unit, models, guarantees or e2e; a new file is
    listed there, so `pytest -m "not e2e"` stays the fast loop (docs/testing.md)."""
    from conftest import LAYERS

    listed = [f for files in LAYERS.values() for f in files]
    assert len(listed) == len(set(listed)), "a file is listed under two layers"
    found = sorted(f for f in os.listdir(os.path.join(ROOT, "tests"))
                   if f.startswith("test_") and f.endswith(".py"))
    assert sorted(set(found) - set(listed)) == [], "add these to LAYERS in tests/conftest.py"


SUBSYSTEM_PACKAGES = {
    "identity": ("identity", "dlib", "embedder", "student"),  # embedders, verification, ResNet
    "export": ("convert", "quantiz", "qat", "harness", "validat"),  # files for apps
    "restore": ("restor", "inference", "video", "sr_photo"),  # the photo and video path
    "segmenter": ("segment",),  # the occluder segmenter: model, data, train, infer, export
}


def test_a_subsystem_is_one_package():
    """Identity (embedders, verification, the dlib ResNet, the student) is tfface/identity/,
    conversion and validation tfface/export/, restoring photos and videos tfface/restore/,
    the occluder segmenter tfface/segmenter/: no module of theirs lies outside its
    package."""
    for package, words in SUBSYSTEM_PACKAGES.items():
        assert f"tfface/{package}/__init__.py" in _modules("tfface")
        stray = [p for p in _modules("tfface") if not p.startswith(f"tfface/{package}/")
                 and any(w in os.path.basename(p) for w in words)]
        assert not stray, f"{', '.join(stray)} belong(s) in tfface/{package}/"


def test_the_data_pipeline_does_not_import_the_photo_path():
    """Training crops and photos share one framing (tfface.framing, a base module): the
    data layer reads it there, never through tfface.faces."""
    loaded = _import_closure("tfface.data.pipeline")
    assert "tfface.framing" in loaded
    assert not [m for m in loaded if m.startswith("tfface.faces")]
    assert not [m for m in _import_closure("tfface.framing") if m != "tfface.framing"
                and m != "tfface"]


def test_the_config_does_not_import_the_data_layer():
    """The config is below the data pipeline: it holds the constants both read (e.g. the
    super-resolution factors, ``SCALES``) and never imports ``tfface.data``."""
    loaded = _import_closure("tfface.config")
    assert not [m for m in loaded if m.startswith("tfface.data")]
    from tfface.config import SCALES
    from tfface.data import degrade

    assert degrade.SCALES is SCALES


MOVED = {  # issue 38: old module → where its code lives now (docs/architecture.md)
    "tfface.inference": "tfface.restore.model / square / photo",
    "tfface.faces.pipeline": "tfface.restore.photo",
    "tfface.faces.sr_photo": "tfface.restore.sr",
    "tfface.videoio": "tfface.restore.video",
    "tfface.faces.segmenter": "tfface.segmenter.model / data / train / infer",
}


def test_moved_modules_are_gone_and_nothing_names_them():
    """No module is left at an old path, and no code, test or page imports or names one
    (a stale name would send a reader to a file that does not exist)."""
    present = {_module_name(p) for p in _modules("tfface")}
    assert not present & set(MOVED), f"{sorted(present & set(MOVED))} came back"
    stale = []
    for folder, exts in (("tfface", ".py"), ("pipelines", ".py"), ("tflite", ".py"),
                         ("benchmarks", ".py"), ("tests", ".py"), ("docs", ".md")):
        for root, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if not f.endswith(exts) or f == "test_architecture.py":
                    continue
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    text = fh.read()
                stale += [f"{os.path.relpath(os.path.join(root, f), ROOT)}: {old}"
                          for old in MOVED if re.search(re.escape(old) + r"\b", text)
                          or old.replace(".", "/") + ".py" in text]
    for f in ("README.md", "android_demo_assets/README.md", "web_demo/app.js"):
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            text = fh.read()
        stale += [f"{f}: {old}" for old in MOVED if re.search(re.escape(old) + r"\b", text)]
    # docs/architecture.md lists the moves (old → new) on purpose
    stale = [s for s in stale if not s.startswith("docs/architecture.md")]
    assert not stale, "names of moved modules: " + "; ".join(stale)


def _loads(start: str, prefix: str) -> list[str]:
    return sorted(m for m in _import_closure(start) if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize("module", [_module_name(p) for p in _modules("tfface/faces")])
def test_finding_faces_never_loads_restoring_or_the_segmenter(module):
    """tfface.faces finds and frames faces; restoring them (tfface.restore) and the
    occluder segmenter (tfface.segmenter) are built on it, never the other way round."""
    assert _loads(module, "tfface.restore") == [] and _loads(module, "tfface.segmenter") == []


@pytest.mark.parametrize("module", [_module_name(p) for p in _modules("tfface/segmenter")])
def test_the_segmenter_never_loads_the_restore_path(module):
    """Restore uses the segmenter (its hole); the segmenter does not know restore."""
    assert _loads(module, "tfface.restore") == []


def test_the_layer_checks_see_the_imports_they_forbid():
    """The two checks above can fail: restore loads faces and the segmenter, the
    segmenter's export loads faces (it aligns its sample face)."""
    assert "tfface.faces.align" in _import_closure("tfface.restore.photo")
    assert "tfface.segmenter.infer" in _import_closure("pipelines.restore")
    assert "tfface.faces.detect" in _import_closure("tfface.segmenter.export")


def test_the_mask_metric_lives_in_one_module():
    """Pixel accuracy and IoU of a predicted mask: tfface.metrics.mask_scores, read by
    the segmenter's training and card and the unmask family's validation."""
    owners = [p for p in _modules("tfface", "pipelines", "benchmarks")
              if "mask_scores" in _defines(p)]
    assert owners == ["tfface/metrics.py"]


@pytest.mark.parametrize("cli", ["pipelines/train_segmenter.py", "pipelines/export_segmenter.py",
                                 "pipelines/restore.py"])
def test_the_segmenter_and_restore_command_lines_hold_no_library_code(cli):
    """What they do is tfface.segmenter / tfface.restore; they parse, print, exit."""
    with open(os.path.join(ROOT, cli), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    library = [n for _, n in _imported(tree, "pipelines")
               if n.startswith(("tfface.segmenter", "tfface.restore"))]
    assert library, f"{cli} calls no library module"
    big = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
           and n.name not in ("main", "build_parser") and n.end_lineno - n.lineno + 1 > 40]
    assert not big, f"{cli}: {big} look like library code"
