"""What the model does not read of an expression: the words its vocabulary lacks (named once per
expression by predict and the app), zero-width characters (removed as BERT removes them), text
that is not valid Unicode (a lone surrogate: refused), and a dataset's unreadable expressions
(all counted, once)."""

import json
import logging
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from rrsis import Tokenizer
from rrsis.data.expressions import (
    ZERO_WIDTH,
    check_expression,
    expression_problem,
    unknown_words,
    unreadable_expressions,
)
from rrsis.scene import segment_scene

LONE = json.loads('"the ship \\ud83d"')  # an emoji cut in half, as JSON from a UTF-16 tool gives it


@pytest.mark.parametrize(("text", "unknown"), [
    ("the smalest building", ["smalest"]),
    ("the 最小的 building", ["最小的"]),  # each CJK character is a word; neighbours named together
    ("der kleinste building", ["der", "kleinste"]),
    ("The Smalest, building!", ["Smalest"]),  # as written; punctuation alone not named
    ("the 🚢 ship | tank", ["🚢"]),
    ("the smallest building", []),
])
def test_unknown_words_are_named_as_written(tiny_tokenizer, text, unknown):
    assert unknown_words(tiny_tokenizer, text) == unknown
    problem = expression_problem(tiny_tokenizer, text, words=True)
    if unknown:
        assert problem.startswith(f"words not in the model's vocabulary: {', '.join(map(repr, unknown))}; "
                                  "the model does not read them")
    else:
        assert problem is None
    assert expression_problem(tiny_tokenizer, text) is None  # the datasets' check: only all-unknown


@pytest.mark.parametrize("zw", sorted(ZERO_WIDTH))
def test_zero_width_characters_are_removed_as_bert_removes_them(tiny_tokenizer, zw):
    # BERT's normaliser drops every format character (category Cf), so "the<ZW>tank" is one word.
    assert tiny_tokenizer.tokenize(f"the{zw}tank") == tiny_tokenizer.tokenize("thetank") == ["[UNK]"]
    assert tiny_tokenizer.tokenize(f"the {zw}tank") == ["the", "tank"]
    problem = expression_problem(tiny_tokenizer, f"the{zw}tank near the road", words=True)
    assert repr(f"the{zw}tank") in problem and f"U+{ord(zw):04X}: an invisible character" in problem


def test_predict_and_segment_scene_name_the_unknown_words_once_per_expression(tiny_model):
    img = np.zeros((64, 64, 3), np.uint8)
    texts = ["the smalest tank", "the smallest tank", "the 最小的 tank"]
    for call in (lambda: tiny_model.predict([img] * 3, texts), lambda: segment_scene(tiny_model, img, texts)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        said = [str(w.message) for w in caught if "vocabulary" in str(w.message)]
        assert [s.split(":")[0] for s in said] == ["text 0", "text 2"]
        assert "'smalest'" in said[0] and "'最小的'" in said[1]


@pytest.mark.parametrize("where", ["check_expression", "tokenizer", "tokenize", "predict", "segment_scene"])
def test_a_lone_surrogate_is_refused_naming_the_problem(tiny_model, where):
    img = np.zeros((64, 64, 3), np.uint8)
    call = {"check_expression": lambda: check_expression(LONE),
            "tokenizer": lambda: tiny_model.tokenizer([LONE]),
            "tokenize": lambda: tiny_model.tokenizer.tokenize(LONE),
            "predict": lambda: tiny_model.predict([img], [LONE]),
            "segment_scene": lambda: segment_scene(tiny_model, img, [LONE])}[where]
    with pytest.raises(ValueError, match=r"is not valid Unicode text: character 10 is a lone surrogate \(U\+D83D"):
        call()


def test_a_dataset_counts_every_unreadable_expression_once(tiny_tokenizer, caplog):
    texts = ["the tank", "zzz", "qqq www", "the 最小的", "最小的", "?!", " ".join(["the red tank"] * 5)]
    dataset = SimpleNamespace(entries=[SimpleNamespace(sentences=[(f"s{i}", t) for i, t in enumerate(texts)])],
                              tokenizer=tiny_tokenizer)
    expected = [f"s{i}" for i, t in enumerate(texts)
                if all(p == "[UNK]" for p in tiny_tokenizer.tokenize(t))]
    cut = [f"s{i}" for i, t in enumerate(texts) if len(tiny_tokenizer.tokenize(t)) + 2 > tiny_tokenizer.max_tokens]
    assert cut == ["s6"]
    with caplog.at_level(logging.WARNING, logger="rrsis"):
        for _ in range(3):  # counted and told once, however often asked (each sample asks)
            found = unreadable_expressions(dataset)
    assert found == {"count": len(expected), "of": len(texts), "sample_ids": expected,
                     "truncated": {"count": 1, "sample_ids": cut}}
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and said[1].startswith(f"SimpleNamespace: 1 of {len(texts)} expressions are truncated "
                                                 f"to {tiny_tokenizer.max_tokens} tokens")
    assert said[0].startswith(f"SimpleNamespace: {len(expected)} of {len(texts)} expressions have "
                                                 "no word the model knows")
    assert ", ".join(expected) in said[0]
    other = Tokenizer.from_words(["zzz"])
    dataset.tokenizer = other  # another vocabulary: counted again
    assert unreadable_expressions(dataset, log=False)["count"] == sum(
        all(p == "[UNK]" for p in other.tokenize(t)) for t in texts)
    assert unreadable_expressions(SimpleNamespace(tokenizer=None, entries=[])) is None
