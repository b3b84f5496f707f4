"""After a bare ``import rrsis`` the public subpackages are attributes (``rrsis.kernels.compile_model``
as the docs write it), imported on first use: ``import rrsis`` itself still loads none of them."""

from __future__ import annotations

import json
import subprocess
import sys

from _fixtures import REPO

CHECK = """
import json, sys
import rrsis
before = {m: f"rrsis.{m}" in sys.modules for m in ("kernels", "engine", "hub", "registry", "scene")}
torch_before = "torch" in sys.modules
found = {
    "kernels": callable(rrsis.kernels.compile_model),
    "engine": callable(rrsis.engine.param_groups),
    "hub": callable(rrsis.hub.from_pretrained),
    "registry": callable(rrsis.registry.list_models),
    "scene": callable(rrsis.scene.segment_scene),
}
import rrsis.kernels
try:
    rrsis.no_such_module
    missing = "no error"
except AttributeError as exc:
    missing = str(exc)
print(json.dumps({"before": before, "torch_before": torch_before, "found": found,
                  "same": rrsis.kernels is sys.modules["rrsis.kernels"], "missing": missing,
                  "listed": [m for m in ("kernels", "engine", "hub") if m in dir(rrsis)]}))
"""


def test_subpackages_are_attributes_of_a_fresh_rrsis_imported_on_first_use():
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == dict.fromkeys(("kernels", "engine", "hub", "registry", "scene"), False)
    assert result["torch_before"] is False
    assert result["found"] == dict.fromkeys(("kernels", "engine", "hub", "registry", "scene"), True)
    assert result["same"] is True
    assert result["missing"] == "module 'rrsis' has no attribute 'no_such_module'"
    assert result["listed"] == ["kernels", "engine", "hub"]
