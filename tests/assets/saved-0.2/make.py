"""Writes this folder: one small saved model per architecture and its fp32 CPU logits.

Run once, with the rrsis that wrote the nested configs (before the single config form), from the
repository root: ``python tests/assets/saved-0.2/make.py``. tests/models/test_build.py loads the models
with today's code and asserts identical logits.
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

import rrsis
from rrsis.text import Tokenizer

HERE = Path(__file__).parent
WORDS = ["the", "storage", "tank", "north", "of", "road", "large", "white", "building", "left", "ship"]
TEXTS = ["the large white storage tank north of the road", "ship left of the building"]
# Shrunk tiny models (a few hundred kB each); one alias and one nested node per model.
MODELS = {
    "gl-msin-tiny": {"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2],
                     "text_layers": 1, "head": {"name": "refine", "hidden": 8}},
    "lavt-tiny": {"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2],
                  "text_layers": 1,
                  "text": {"vocab_size": 64, "hidden_size": 32, "num_heads": 2,
                           "intermediate_size": 64, "max_positions": 32, "max_tokens": 12}},
    "rmsin-tiny": {"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2],
                   "text_layers": 1,
                   "text": {"vocab_size": 64, "hidden_size": 32, "num_heads": 2,
                            "intermediate_size": 64, "max_positions": 32},
                   "neck_args": {"grid": 2}},
}


def main() -> None:
    for name, kwargs in MODELS.items():
        torch.manual_seed(0)
        model = rrsis.create_model(name, image_size=64, **kwargs).eval()
        tok = Tokenizer.from_words(WORDS, max_tokens=model.config["text"]["max_tokens"])
        model.tokenizer = tok
        model.save_pretrained(HERE / name)
        gen = torch.Generator().manual_seed(1)
        pixels = torch.randn(2, 3, 64, 64, generator=gen)
        enc = tok(TEXTS)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        with torch.no_grad():
            out = model(pixels, ids, mask)
        tensors = {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask, "logits": out.logits}
        tensors.update({f"aux_{i}": a for i, a in enumerate(out.aux_logits)})
        save_file({k: v.contiguous() for k, v in tensors.items()}, HERE / f"{name}-io.safetensors")


if __name__ == "__main__":
    main()
