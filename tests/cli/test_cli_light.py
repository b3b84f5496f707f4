"""Answers that need no model come without importing the model stack (torch, timm, torchvision)."""

from __future__ import annotations

import json
import subprocess
import sys

from _fixtures import REPO

CHECK = """
import contextlib, io, json, sys
from rrsis.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["train", "--list"])
print(json.dumps({"code": code, "names": out.getvalue().split(), "torch": "torch" in sys.modules}))
"""


def test_train_list_names_the_shipped_recipes_without_importing_torch():
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    shipped = sorted(p.stem for p in (REPO / "rrsis" / "configs").glob("*.json"))
    assert result == {"code": 0, "names": shipped, "torch": False}


def test_loading_a_recipe_needs_no_torch():
    code = ("import sys; from rrsis.engine.recipe import load_config; "
            "cfg = load_config('gl-msin-tiny-synthetic', ['train.max_steps=2']); "
            "print(cfg['train']['max_steps'], 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.split() == ["2", "False"]


MODELS = """
import contextlib, io, json, sys
from rrsis.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["models"])
heavy = sorted(m for m in ("timm", "torchvision", "triton") if m in sys.modules)
from rrsis.registry import HEADS, LOCAL_ATTENTION  # a part table's first lookup loads the parts
print(json.dumps({"code": code, "names": out.getvalue().split(), "heavy": heavy,
                  "parts": ["refine" in HEADS.names(), "elsa" in LOCAL_ATTENTION.names()]}))
"""


def test_models_lists_the_registry_without_timm_torchvision_or_triton():
    import rrsis

    done = subprocess.run([sys.executable, "-c", MODELS], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "names": rrsis.list_models(), "heavy": [], "parts": [True, True]}
