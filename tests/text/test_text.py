"""Tokenizer and BERT text encoder (rrsis/text/)."""

import pytest
import torch

from rrsis import Tokenizer
from rrsis.text import TextConfig, TextEncoder


def test_encodes_like_bert_uncased(tiny_tokenizer):
    out = tiny_tokenizer(["The LARGEST storage tank", "a plane"])
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.shape == mask.shape == (2, 12) and ids.dtype == torch.long and mask.dtype == torch.long
    v = tiny_tokenizer.vocab
    assert ids[0, :6].tolist() == [v["[CLS]"], v["the"], v["largest"], v["storage"], v["tank"], v["[SEP]"]]
    assert mask[0].tolist() == [1] * 6 + [0] * 6
    assert ids[0, 6:].eq(0).all()  # zero padding


def test_truncates_after_adding_special_tokens(tiny_tokenizer):
    # The anchors truncate [CLS] ... [SEP] to max_tokens, so a long sentence loses its [SEP].
    long = " ".join(["tank"] * 30)
    out = tiny_tokenizer([long])
    assert out["attention_mask"].sum() == 12
    assert tiny_tokenizer.vocab["[SEP]"] not in out["input_ids"][0].tolist()


def test_wordpiece_subwords_and_unknown():
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "tank", "##s", "storage"])}
    tok = Tokenizer(vocab, max_tokens=8)
    assert tok.tokenize("Storage tanks") == ["storage", "tank", "##s"]
    assert tok.tokenize("zebra") == ["[UNK]"]


def test_save_and_load_round_trip(tmp_path, tiny_tokenizer):
    paths = tiny_tokenizer.save_pretrained(tmp_path)
    assert {p.name for p in paths} == {"vocab.txt", "tokenizer_config.json"}
    again = Tokenizer.from_pretrained(tmp_path)
    assert again.vocab == tiny_tokenizer.vocab and again.max_tokens == 12
    text = ["all three storage tanks near the road"]
    assert torch.equal(again(text)["input_ids"], tiny_tokenizer(text)["input_ids"])
    assert (tmp_path / "vocab.txt").read_text().splitlines()[:2] == ["[PAD]", "[UNK]"]


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_is_an_error(tiny_tokenizer, text):
    with pytest.raises(ValueError, match="text 1 is empty"):
        tiny_tokenizer(["a tank", text])


def test_bad_vocabularies(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocabulary file not found"):
        Tokenizer(tmp_path / "missing.txt")
    (tmp_path / "dup.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\ntank\ntank\n")
    with pytest.raises(ValueError, match="appears twice"):
        Tokenizer(tmp_path / "dup.txt")
    with pytest.raises(ValueError, match=r"no \[CLS\]"):
        Tokenizer({"[PAD]": 0, "[UNK]": 1, "[SEP]": 2})


def test_encoder_shapes_and_freezing():
    enc = TextEncoder(TextConfig(vocab_size=50, hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64,
                                 max_positions=16, max_tokens=16))
    out = enc(torch.randint(0, 50, (3, 7)), torch.ones(3, 7, dtype=torch.long))
    assert out.shape == (3, 7, 32)
    trainable = {n.split(".")[3] for n, p in enc.named_parameters() if p.requires_grad and ".layer." in n}
    assert trainable == {"0", "1"}  # layers 2, 3 (the last two) and embeddings frozen
    assert not any(p.requires_grad for p in enc.bert.embeddings.parameters())
    assert not hasattr(enc.bert, "pooler") or enc.bert.pooler is None


def test_padded_positions_do_not_reach_real_tokens():
    torch.manual_seed(0)
    enc = TextEncoder(TextConfig(vocab_size=50, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                 max_positions=16, max_tokens=16)).eval()
    ids = torch.randint(5, 50, (1, 8))
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    other = ids.clone()
    other[0, 5:] = torch.tensor([7, 8, 9])
    with torch.no_grad():
        a, b = enc(ids, mask), enc(other, mask)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-6)
