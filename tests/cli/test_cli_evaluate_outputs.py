"""``rrsis evaluate --data``: an existing metrics file needs --overwrite (refused before any work,
as every rrsis output), and --quiet silences the progress bar."""

from __future__ import annotations

import json

import pytest
import torch

import rrsis
from rrsis.cli import main


@pytest.fixture(scope="module")
def data_and_model(tmp_path_factory):
    from rrsis.data.synthetic import generate, vocabulary
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("eval_outputs")
    generate(str(out), 4, seed=2, size=64, layout="rrsisd")
    torch.manual_seed(0)
    tok = rrsis.Tokenizer.from_words(vocabulary())
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tok))
    model.tokenizer = tok
    save_pretrained(model, out / "model")
    return out / "rrsisd", out / "model"


@pytest.fixture
def calls(monkeypatch):
    """The keyword arguments of each evaluation the command runs."""
    import rrsis.engine.evaluation as evaluation

    seen, real = [], evaluation.evaluate

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", spy)
    return seen


def test_a_second_run_needs_overwrite_and_quiet_applies_to_data(data_and_model, tmp_path, capsys, monkeypatch, calls):
    root, model = data_and_model
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", "--model", str(model), "--data", str(root), "--dataset", "rrsisd", "--split", "val",
            "--num-workers", "0"]
    assert main([*argv, "--quiet"]) == 0
    assert calls[-1]["progress"] is False
    assert "wrote eval-rrsisd-val.json" in capsys.readouterr().out
    first = (tmp_path / "eval-rrsisd-val.json").read_text()
    assert json.loads(first)["resolution"] == "64x64"

    assert main([*argv, "--native-resolution"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("rrsis evaluate: error: eval-rrsisd-val.json exists (the metrics of an earlier evaluation): "
                    "pass --overwrite to replace it, or choose another --out")]
    assert len(calls) == 1 and (tmp_path / "eval-rrsisd-val.json").read_text() == first  # nothing ran

    assert main([*argv, "--native-resolution", "--overwrite"]) == 0
    assert calls[-1]["progress"] is True  # the bar by default
    assert json.loads((tmp_path / "eval-rrsisd-val.json").read_text())["resolution"] == "native"


def _argv(data_and_model, *extra):
    root, model = data_and_model
    return ["evaluate", "--model", str(model), "--data", str(root), "--dataset", "rrsisd", "--split", "val",
            "--num-workers", "0", "--quiet", *extra]


@pytest.mark.parametrize("value", ["2", "-1", "nan"])
def test_empty_iou_outside_unit_interval_refused(data_and_model, tmp_path, capsys, monkeypatch, calls, value):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(_argv(data_and_model, "--empty-iou", value))
    assert exit_info.value.code == 2 and not calls
    assert f"argument --empty-iou: '{value}': expected a number in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "eval-rrsisd-val.json").exists()


def test_empty_iou_help_says_its_range(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "IoU when prediction and target are both empty, in [0, 1]" in help_text


def test_evaluate_api_refuses_empty_iou_outside_unit_interval(data_and_model):
    from rrsis.data import RRSISDDataset
    from rrsis.engine.evaluation import evaluate
    from rrsis.hub import from_pretrained

    root, model_dir = data_and_model
    model = from_pretrained(str(model_dir))
    dataset = RRSISDDataset(str(root), "val", size=64, tokenizer=model.tokenizer)
    with pytest.raises(ValueError, match=r"empty_iou must be in \[0, 1\].*got 2"):
        evaluate(model, dataset, empty_iou=2, progress=False)


@pytest.mark.parametrize(("size", "near"), [("100", "e.g. 96 or 128"), ("20", "e.g. 64;"), ("48", "e.g. 64;")])
def test_image_size_not_a_multiple_is_told_for_evaluate(data_and_model, tmp_path, capsys, monkeypatch, calls,
                                                        size, near):
    monkeypatch.chdir(tmp_path)
    assert main(_argv(data_and_model, "--image-size", size)) == 2
    err = capsys.readouterr().err
    assert f"--image-size {size}: the model takes a multiple of 32 ({near}" in err
    assert "model.predict" not in err and not calls  # refused before the dataset is read


def test_image_size_below_the_smallest_side_is_told_in_the_commands_words(data_and_model, tmp_path, capsys,
                                                                         monkeypatch, calls):
    monkeypatch.chdir(tmp_path)
    assert main(_argv(data_and_model, "--image-size", "32")) == 2
    err = capsys.readouterr().err
    assert "--image-size: image_size 32 is too small for this model: the smallest accepted side is 64" in err
    assert "(leave the flag out: the model's 64)" in err and "None:" not in err and not calls


@pytest.mark.parametrize("empty_iou", ["0", "1"])
def test_empty_iou_is_recorded_with_the_metrics(data_and_model, tmp_path, monkeypatch, empty_iou):
    monkeypatch.chdir(tmp_path)
    assert main(_argv(data_and_model, "--empty-iou", empty_iou, "--out", "m.json")) == 0
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["empty_iou"] == float(empty_iou)


@pytest.mark.parametrize("installed", [True, False])
def test_coco_backend_recorded_and_printed(data_and_model, tmp_path, capsys, monkeypatch, caplog, installed):
    import logging
    import sys

    from rrsis.data import coco

    if installed and not coco.have_pycocotools():
        pytest.skip("pycocotools not installed")
    if not installed:  # as without the coco extra; the once-per-process warning not yet given
        monkeypatch.setitem(sys.modules, "pycocotools", None)
        monkeypatch.setitem(sys.modules, "pycocotools.mask", None)
        monkeypatch.setattr(coco, "_fallback_warned", False)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert main(_argv(data_and_model)) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "eval-rrsisd-val.json").read_text())
    backend = "pycocotools" if installed else "numpy"
    assert record["coco_backend"] == backend
    assert f"masks decoded by {backend}" in out
    told = [r.getMessage() for r in caplog.records if "pycocotools is not installed" in r.getMessage()]
    if installed:
        assert "rrsis[coco]" not in out and not told
    else:
        assert 'published RRSIS-D numbers need pip install "rrsis[coco]"' in out
        assert len(told) == 1  # the synthetic set's polygons


def test_the_record_names_the_weights_evaluated(data_and_model, tmp_path, monkeypatch):
    """Two models under one name (another Hub revision, a folder overwritten) are told apart by the
    record: the weights' fingerprint, as predict's outputs carry it."""
    import rrsis
    from rrsis.scene.outputs import model_fingerprint

    monkeypatch.chdir(tmp_path)
    assert main(_argv(data_and_model, "--out", "m.json")) == 0
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["model_sha256"] == model_fingerprint(rrsis.from_pretrained(data_and_model[1]))
    assert "revision" not in record


def test_every_unreadable_expression_is_counted_told_and_recorded(data_and_model, tmp_path, monkeypatch, caplog):
    """A vocabulary of one expression's own words: every expression that has none of them is counted
    (not only the first one read), told in one line and recorded in the metrics file."""
    import logging

    from rrsis.data import build_dataset
    from rrsis.engine.inputs import text_words
    from rrsis.hub import save_pretrained

    root, _ = data_and_model
    sentences = [s for e in build_dataset("rrsisd", str(root), "val", mode="eval").entries for s in e.sentences]
    shared = set.intersection(*(set(text_words([text])) for _, text in sentences))  # "the"
    tok = rrsis.Tokenizer.from_words(w for w in text_words([sentences[0][1]]) if w not in shared)
    unreadable = [sid for sid, text in sentences if set(text_words([text])).isdisjoint(tok.vocab)]
    assert 1 < len(unreadable) < len(sentences)  # the data make the point: some, not all
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tok))
    model.tokenizer = tok
    save_pretrained(model, tmp_path / "few-words")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", "--model", str(tmp_path / "few-words"), "--data", str(root), "--dataset", "rrsisd",
                     "--split", "val", "--num-workers", "0", "--quiet", "--out", "m.json"]) == 0
    told = [r.getMessage() for r in caplog.records if "no word the model knows" in r.getMessage()]
    assert len(told) == 1 and f"{len(unreadable)} of {len(sentences)} expressions" in told[0]
    assert "later samples" not in told[0]
    record = json.loads((tmp_path / "m.json").read_text())["unreadable_expressions"]
    cut = [sid for sid, text in sentences if sid not in unreadable and len(tok.tokenize(text)) + 2 > tok.max_tokens]
    assert record == {"count": len(unreadable), "of": len(sentences), "sample_ids": unreadable[:5],
                      "truncated": {"count": len(cut), "sample_ids": cut[:5]}}
