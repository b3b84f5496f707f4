"""Plugin modules (rrsis.plugins): --plugin, $RRSIS_PLUGINS and the 'rrsis.plugins' entry points,
each checked in a fresh interpreter with a module written here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rrsis import ConfigError
from rrsis.plugins import import_plugins

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
from rrsis.registry import HEADS, register_model
from rrsis.models.gl_msin import gl_msin_tiny


@HEADS.register("plugin-test-head")
def build(*, in_channels, width: int = 8):
    from rrsis.heads.simple import SimpleDecoder
    return SimpleDecoder(in_channels)


@register_model("plugin-test-model")
def plugin_test_model(config=None, **overrides):
    return gl_msin_tiny(config, **overrides)
'''


def _rrsis(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]), "OMP_NUM_THREADS": "1"}
    full.pop("RRSIS_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "rrsis", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**full, **(env or {})}, timeout=300)


@pytest.fixture
def plugin_dir(tmp_path):
    (tmp_path / "myplugin.py").write_text(PLUGIN)
    return tmp_path


def test_a_model_from_a_plugin_is_unknown_until_the_plugin_is_named(plugin_dir):
    without = _rrsis(plugin_dir, "models", "plugin-*")
    assert "no model matches" in without.stdout
    for run in (_rrsis(plugin_dir, "models", "--plugin", "myplugin", "plugin-*"),
                _rrsis(plugin_dir, "models", "plugin-*", env={"RRSIS_PLUGINS": "json, myplugin"})):
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["plugin-test-model"]


def test_an_entry_point_plugin_loads_with_the_builtins(plugin_dir):
    dist = plugin_dir / "myplugin_dist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin-dist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rrsis.plugins]\nmyplugin = myplugin\n")
    run = _rrsis(plugin_dir, "models", "plugin-*")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["plugin-test-model"]
    code = "from rrsis.registry import HEADS; print('plugin-test-head' in HEADS)"
    py = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=plugin_dir, timeout=300,
                        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(plugin_dir)])})
    assert py.stdout.strip() == "True", py.stderr


def test_a_plugin_that_is_not_importable_is_named(plugin_dir):
    run = _rrsis(plugin_dir, "models", "--plugin", "./myplugin.py")
    assert run.returncode == 2
    assert "plugin module './myplugin.py' not found" in run.stderr
    with pytest.raises(ConfigError, match="plugin module 'no_such_rrsis_plugin' not found"):
        import_plugins([], environ={"RRSIS_PLUGINS": "no_such_rrsis_plugin"})


def test_an_unknown_part_says_how_to_import_its_plugin():
    import rrsis

    with pytest.raises(ConfigError, match=r"unknown head 'center'.*--plugin MODULE or RRSIS_PLUGINS"):
        rrsis.create_model("gl-msin-tiny", head="center")

