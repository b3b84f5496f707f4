"""Recipe values refused before any data is read, in the user's terms: a model name or pretrained
tag the registry does not know (``--print-config`` too), and a ``train.output_dir`` that is a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrsis import ConfigError
from rrsis.cli import main
from rrsis.engine.recipe import load_config
from rrsis.engine.run_folder import not_a_folder, resume_plan
from rrsis.engine.validate import check_model_name


@pytest.mark.parametrize(("name", "expected"), [
    ("os.system", "model.name='os.system': unknown model 'os'"),
    ("gl-msin.nope", "model.name='gl-msin.nope': unknown pretrained tag 'gl-msin.nope'"),
])
def test_print_config_refuses_an_unknown_model(capsys, name, expected):
    assert main(["train", "--config", "gl-msin-tiny-synthetic", "--model.name", name, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rrsis train: error: {expected}") and err.count("\n") == 1


def test_model_name_rules():
    check_model_name({"name": "gl-msin-tiny"})
    check_model_name({"name": "gl-msin.in22k", "pretrained": True})
    check_model_name({"name": "no-such-model", "init": "some/folder"})  # fine-tuning: the saved model names it
    with pytest.raises(ConfigError, match="'gl-msin-tiny' has no pretrained configuration"):
        check_model_name({"name": "gl-msin-tiny", "pretrained": True})
    check_model_name({"name": "gl-msin-tiny", "pretrained": True, "swin_weights": "x.pth"})
    with pytest.raises(ConfigError, match="model.name must be a non-empty string"):
        check_model_name({"name": 3})


def test_trainer_refuses_an_unknown_model_before_reading_data(tmp_path):
    from rrsis.engine import Trainer

    cfg = load_config("gl-msin-tiny-synthetic", [f"data.root={tmp_path / 'absent'}", "model.name=os.system",
                                                 f"train.output_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError, match="unknown model 'os'"):
        Trainer(cfg)


def test_output_dir_that_is_a_file(tmp_path):
    from rrsis.engine import Trainer

    file = tmp_path / "afile"
    file.write_text("")
    assert not_a_folder(tmp_path / "new" / "run") == ""
    assert not_a_folder(file) == (f"train.output_dir {file} cannot be the run's folder: it is a file, not a "
                                  "folder; give another --train.output_dir or move the file")
    deeper = file / "x" / "run"
    assert f"{file}, on the way to it, is a file, not a folder" in not_a_folder(deeper)
    assert resume_plan(Path(file), None, False) == ("error", ("FileExistsError", not_a_folder(file)))
    cfg = load_config("gl-msin-tiny-synthetic", [f"data.root={tmp_path / 'absent'}", f"train.output_dir={file}"])
    with pytest.raises(FileExistsError, match="it is a file, not a folder"):
        Trainer(cfg)  # before the (absent) data is read
