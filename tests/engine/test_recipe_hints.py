"""A misplaced or misspelt recipe key names where it belongs; dataset options are checked by name
when the recipe is loaded, before anything is built."""

import json

import pytest

from rrsis import ConfigError
from rrsis.engine import load_config


@pytest.mark.parametrize(("override", "hint"), [
    ("train.lr=1e-3", "unknown config key 'train.lr'; it belongs in another section: optim.lr"),
    ("optim.batch_size=2", "it belongs in another section: train.batch_size"),
    ("batchsize=2", "unknown config key 'batchsize'; did you mean 'train.batch_size'?"),
    ("epoch=3", "did you mean 'train.epochs'?"),
    ("optim.lrr=1e-3", "unknown config key 'optim.lrr'; did you mean 'lr'?"),
    ("foo=1", "unknown config key 'foo'; use section.key"),
    ("data.options.mask_treshold=0", "did you mean 'mask_threshold'?"),
])
def test_override_errors_say_where_the_key_belongs(override, hint):
    overrides = [override, "data.dataset=risbench"]
    with pytest.raises(ConfigError) as err:
        load_config("gl-msin-tiny-synthetic", overrides)
    assert hint in str(err.value)


def test_a_recipe_file_with_a_key_in_the_wrong_section(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"base": "gl-msin-tiny-synthetic", "train": {"weight_decay": 0.1}}))
    with pytest.raises(ConfigError, match=r"mine.json: unknown config key 'train.weight_decay'; it belongs "
                                          r"in another section: optim.weight_decay"):
        load_config(str(path))


def test_dataset_options_follow_the_dataset_they_are_given_to():
    # mask_threshold is a folder dataset's option, not RRSIS-D's (whose masks are COCO shapes).
    with pytest.raises(ConfigError, match=r"unknown key 'mask_threshold' in data.options \(dataset 'rrsisd'\)"):
        load_config("gl-msin-tiny-synthetic", ["data.options.mask_threshold=0"])
    cfg = load_config("gl-msin-tiny-synthetic", ["data.dataset=risbench", "data.options.mask_threshold=0"])
    assert cfg["data"]["options"] == {"mask_threshold": 0}
