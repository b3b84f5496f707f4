"""A saved model whose parts come from a plugin module records that module in config.json
("plugins"), its model card imports it, and loading it where the module is not imported names
it; each side runs in a fresh interpreter with a module written here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugins import PLUGIN

import rrsis

ROOT = Path(__file__).resolve().parents[1]

SAVE = """
import myplugin, rrsis
rrsis.create_model("gl-msin-tiny", head={"name": "plugin-test-head"}).save_pretrained("with-head")
rrsis.create_model("plugin-test-model").save_pretrained("with-model")
rrsis.create_model("gl-msin-tiny").save_pretrained("builtin")
"""

LOAD = """
import sys, rrsis
for name in sys.argv[1:]:
    try:
        rrsis.from_pretrained(name)
        print(name, "loaded")
    except Exception as exc:
        print(name, type(exc).__name__, str(exc).replace("\\n", " "))
"""


def _python(cwd: Path, code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(cwd)]), "OMP_NUM_THREADS": "1"}
    env.pop("RRSIS_PLUGINS", None)
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin-record")
    (root / "myplugin.py").write_text(PLUGIN)
    _python(root, SAVE)
    return root


def test_config_records_the_plugin_module_and_the_card_imports_it(saved):
    for name in ("with-head", "with-model"):
        assert json.loads((saved / name / "config.json").read_text())["plugins"] == ["myplugin"], name
        card = (saved / name / "README.md").read_text()
        assert "import rrsis\nimport myplugin  # registers parts of this model\n\nmodel = rrsis.from_pretrained(" in card
    assert "plugins" not in json.loads((saved / "builtin" / "config.json").read_text())
    assert "import myplugin" not in (saved / "builtin" / "README.md").read_text()


def test_loading_without_the_plugin_names_the_recorded_module(saved):
    lines = dict(line.split(" ", 1) for line in _python(saved, LOAD, "with-head", "with-model").splitlines())
    for name in ("with-head", "with-model"):
        assert lines[name].startswith("CheckpointError"), lines[name]
        assert ("Its parts were registered by myplugin (config.json's \"plugins\"): import it first, or pass "
                "--plugin myplugin to the rrsis command.") in lines[name]
    assert "unknown head 'plugin-test-head'" in lines["with-head"]
    assert "names architecture 'plugin-test-model'" in lines["with-model"]
    with_plugin = _python(saved, "import myplugin\n" + LOAD, "with-head", "with-model")
    assert with_plugin.split() == ["with-head", "loaded", "with-model", "loaded"]


def test_an_unknown_part_without_a_close_name_ends_its_sentence():
    with pytest.raises(rrsis.ConfigError, match=r"unknown head 'zzzzzz'\. Known: "):
        rrsis.create_model("gl-msin-tiny", head={"name": "zzzzzz"})
    with pytest.raises(rrsis.ConfigError, match=r"unknown local attention block 'qqqq'\. Known: elsa, swin\. If it"):
        rrsis.create_model("gl-msin-tiny", local_attn=["qqqq", "elsa", "elsa", "swin"])
