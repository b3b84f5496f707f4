"""A recipe file that is JSON but not a recipe: one line naming the file, exit 2 (no traceback)."""

from __future__ import annotations

import pytest

from rrsis import ConfigError
from rrsis.cli import main
from rrsis.engine.recipe import load_config


@pytest.mark.parametrize(("text", "expected"), [
    ("[1, 2]", "a config must be a JSON object, got a JSON list"),
    ('"x"', "a config must be a JSON object, got a JSON str"),
    ('{"base": [1]}', "'base' must be a recipe name or a JSON file, got [1]"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_refused_naming_the_file(tmp_path, capsys, text, expected):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}: ") as exc:
        load_config(path)
    assert expected in str(exc.value)
    assert main(["train", "--config", str(path), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"rrsis train: error: {path}: {str(exc.value).split(': ', 1)[1]}"
