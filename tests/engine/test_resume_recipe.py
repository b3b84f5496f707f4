"""A resumed run keeps its recipe: any changed key but how the run is watched, saved and where it
runs is refused (each key named with both values, and the way to a new run from the weights);
the keys a resume may change are applied and recorded. One epoch numbering (from 1) in every
record, and ``data.options`` keys the trainer sets itself are refused with the key to use."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _fixtures import fit, recipe
from PIL import Image

from rrsis import ConfigError
from rrsis.engine import load_config, read_jsonl
from rrsis.engine.resume_rule import RESUME_MAY_CHANGE, recipe_changes


def _folder(root, n=4, val=False):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    words = ["the red roof", "the blue tank", "a road", "the ship"]
    for i in range(n):
        m = np.zeros((32, 32), np.uint8)
        m[2 * i:2 * i + 12, 6:20] = 255
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(m).save(root / "masks" / f"{i}.png")
    lines = "".join(f"{i} {words[i % 4]}\n" for i in range(n))
    (root / "output_phrase_train.txt").write_text(lines)
    if val:
        (root / "output_phrase_val.txt").write_text(lines)
    return str(root)


def _kill_after_step_2(out):
    """The run folder as if the run had been killed after its checkpoint of step 2."""
    for path in (out / "checkpoints").glob("step-*.pt"):
        if int(path.stem[5:]) > 2:
            path.unlink()


def _cfg(root, out, *overrides, **train):
    return recipe(root, out, "data.dataset=risbench", "data.val_split=null", *overrides,
                  **{"max_steps": 4, "checkpoint_every": 2, "log_every": 1, **train})


# (recipe key, the value a resume asks for)
CHANGES = [("optim.lr", 0.1), ("optim.weight_decay", 0.5), ("loss.dice_weight", 0.5), ("data.image_size", 96),
           ("train.seed", 7), ("train.max_steps", 6)]


def test_a_changed_recipe_is_refused_naming_each_key_and_the_way_to_a_new_run(tmp_path):
    root, out = _folder(tmp_path / "data"), tmp_path / "run"
    fit(_cfg(root, out))
    config = (out / "config.json").read_bytes()
    recorded = json.loads(config)
    _kill_after_step_2(out)
    for key, new in CHANGES:
        section, name = key.split(".")
        cfg = _cfg(root, out)
        cfg[section][name] = new
        with pytest.raises(ValueError) as err:
            fit(cfg, resume="auto")
        text = str(err.value)
        assert f"{key}={recorded[section][name]!r} (now {new!r})" in text, text
        assert f"--model.init {out / 'final'} with another --train.output_dir" in text
        assert (out / "config.json").read_bytes() == config  # the run's record is left as it was
    # Two at once: both named.
    with pytest.raises(ValueError, match=r"optim.lr=.* \(now 0.1\); train.seed=5 \(now 7\)"):
        fit(_cfg(root, out, "optim.lr=0.1", seed=7), resume="auto")
    # The way the message names: a new run from the run's weights, with the new value.
    again = fit(_cfg(root, tmp_path / "new", "optim.lr=0.1", f"model.init={out / 'final'}"))
    assert again["steps"] == 4
    assert json.loads((tmp_path / "new" / "config.json").read_text())["optim"]["lr"] == 0.1


def test_keys_that_do_not_change_what_is_trained_are_applied_and_recorded(tmp_path):
    root, out = _folder(tmp_path / "data"), tmp_path / "run"
    fit(_cfg(root, out))
    _kill_after_step_2(out)
    changed = {"log_every": 2, "keep_checkpoints": 5, "eval_every": 2, "checkpoint_every": 1}
    assert fit(_cfg(root, out, "data.num_workers=0", **changed), resume="auto")["steps"] == 4
    recorded = json.loads((out / "config.json").read_text())
    assert {k: recorded["train"][k] for k in changed} == changed
    train = [r["step"] for r in read_jsonl(out / "log.jsonl") if r["type"] == "train"]
    assert train == [1, 2, 4]  # every step before the resume, every 2nd after it
    assert {"train.log_every", "train.device", "data.num_workers"} <= set(RESUME_MAY_CHANGE)


def test_recipe_changes_read_older_and_equivalent_spellings_as_the_same(tmp_path):
    cfg = load_config("gl-msin-tiny-synthetic", [f"data.root={tmp_path}"])
    older = json.loads(json.dumps(cfg))
    older["data"]["max_tokens"] = older["model"].pop("max_tokens", 20)  # rrsis 0.1's place
    older["data"]["options"] = {}
    older["data"]["root"] = f"{tmp_path}/."
    if cfg["model"].get("max_tokens") is None:
        cfg["model"]["max_tokens"] = 20
    assert recipe_changes(older, cfg) == []
    cfg["data"]["options"] = {"image_dir": "img"}
    cfg["train"]["progress"] = not cfg["train"]["progress"]
    assert recipe_changes(older, cfg) == [("data.options.image_dir", None, "img")]


def test_the_same_data_moved_or_reached_from_another_folder_resumes(tmp_path, monkeypatch):
    """data.root compares the training set, not the words typed: the same files moved (a faster
    disk) or named relative to another working folder resume; other files there are refused."""
    import shutil

    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    _folder(tmp_path / "a" / "data")
    out = tmp_path / "run"
    fit(_cfg("data", out))  # relative, from tmp_path/a
    _kill_after_step_2(out)
    monkeypatch.chdir(tmp_path)  # the same folder, named from elsewhere
    assert fit(_cfg("a/data", out), resume="auto")["steps"] == 4
    _kill_after_step_2(out)
    shutil.copytree(tmp_path / "a" / "data", tmp_path / "moved")
    assert fit(_cfg(str(tmp_path / "moved"), out), resume="auto")["steps"] == 4
    assert json.loads((out / "config.json").read_text())["data"]["root"] == str(tmp_path / "moved")
    _kill_after_step_2(out)
    edited = tmp_path / "moved" / "output_phrase_train.txt"
    edited.write_text(edited.read_text().replace("the ship", "the boat"))
    with pytest.raises(ValueError, match="data.root="):
        fit(_cfg(str(tmp_path / "moved"), out), resume="auto")


@pytest.mark.parametrize("key, instead", [("size", "data.image_size"), ("tokenizer", "data.tokenizer"),
                                          ("transform", "data.image_size"), ("train", "data.train_split")])
def test_options_the_trainer_sets_are_refused_with_the_key_to_use(key, instead):
    with pytest.raises(ConfigError, match=rf"data.options.{key} is set by the trainer.*: set {instead}"):
        load_config("gl-msin-tiny-synthetic", ["data.dataset=refsegrs", f"data.options.{key}=32"])
    with pytest.raises(ConfigError, match="mask_treshold") as err:
        load_config("gl-msin-tiny-synthetic", ["data.dataset=refsegrs", "data.options.mask_treshold=0"])
    valid = str(err.value).rpartition("(valid: ")[2].rstrip(")").split(", ")
    assert "mask_threshold" in valid and not {"size", "tokenizer", "transform", "train"} & set(valid)


def test_epochs_count_from_one_in_every_record(tmp_path):
    root, out = _folder(tmp_path / "data", n=8, val=True), tmp_path / "run"
    # 8 samples, batch 4: 2 steps an epoch; 3 steps end mid-way through the second epoch.
    summary = fit(recipe(root, out, "data.dataset=risbench", max_steps=3, log_every=1, checkpoint_every=0))
    records = read_jsonl(out / "log.jsonl")
    train = {r["step"]: r["epoch"] for r in records if r["type"] == "train"}
    val = {r["step"]: r["epoch"] for r in records if r["type"] == "val"}
    assert train == {1: 1, 2: 1, 3: 2}
    assert val == {2: 1, 3: 2} and all(train[s] == e for s, e in val.items())
    assert summary["best"]["epoch"] == val[summary["best"]["step"]]
    assert json.loads((out / "summary.json").read_text())["best"]["epoch"] == summary["best"]["epoch"]
