"""The model records the size it trains at (data.image_size); a recipe giving the model another
size is refused when it is loaded, before anything is built or written."""

import pytest

from rrsis import ConfigError
from rrsis.cli import main
from rrsis.engine import Trainer, load_config
from rrsis.engine.trainer import build_model


def test_a_model_size_other_than_the_training_size_is_refused_naming_both_keys():
    with pytest.raises(ConfigError) as err:
        load_config("gl-msin-tiny-synthetic", ["model.image_size=96"])
    msg = str(err.value)
    assert "model.image_size=96 and data.image_size=64 disagree" in msg
    assert "Set data.image_size=96 (--data.image_size 96)" in msg and "leave model.image_size unset" in msg


def test_the_trainer_refuses_the_conflict_in_a_config_given_as_a_dict():
    with pytest.raises(ConfigError, match=r"model.image_size=128 and data.image_size=64 disagree"):
        Trainer({"model": {"name": "gl-msin-tiny", "image_size": 128}, "data": {"image_size": 64}})


def test_the_cli_refuses_before_writing_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--config", "gl-msin-tiny-synthetic", "--data.root", str(tmp_path),
                 "--model.image_size", "96", "--train.output_dir", str(out)])
    assert code == 2
    assert "model.image_size=96 and data.image_size=64 disagree" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("overrides", [["data.image_size=96"], ["data.image_size=96", "model.image_size=96"]])
def test_one_size_or_both_alike_train_and_record_that_size(overrides):
    cfg = load_config("gl-msin-tiny-synthetic", overrides)
    model = build_model(cfg["model"], image_size=cfg["data"]["image_size"])
    assert model.image_size == 96


def test_a_recipe_refuses_a_size_no_model_runs_and_the_trainer_the_models_own_smallest(synthetic_rrsisd, tmp_path):
    with pytest.raises(ConfigError, match=r"data.image_size must be a multiple of 32 \(64 or more"):
        load_config("gl-msin-tiny-synthetic", ["data.image_size=48"])
    cfg = load_config("gl-msin-tiny-synthetic", [f"data.root={synthetic_rrsisd(4)}", "data.image_size=32"])
    cfg["train"].update({"output_dir": str(tmp_path / "run"), "threads": 1, "progress": False})
    with pytest.raises(ConfigError, match=r"data.image_size: image_size 32 is too small for this model: the "
                                          r"smallest accepted side is 64") as info:
        Trainer(cfg)
    # The model was built at the refused size: no "(None: the model's 32)" naming it as the default.
    assert "None" not in str(info.value) and "the model's" not in str(info.value)
    assert not (tmp_path / "run").exists()
