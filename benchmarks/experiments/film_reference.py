"""A small conv + FiLM reference trained on the ablation table's data and budget (CPU, one thread).

The question it answers: does a plain convolutional encoder with FiLM text conditioning and one
pixel-word attention layer (~1 M parameters, the kind of model the learning-efficiency issue
compared against) learn faster than ``gl-msin-tiny`` at the table's budget? It trains with the
table's recipe (AdamW lr 1e-3, weight decay 1e-2, warm-up 50 then poly 0.9, clip 1.0, batch 8,
0.9·CE + 0.1·Dice) in a plain loop and is scored by the table's ``score`` (mIoU, oIoU, P@0.5,
P@0.9 and mIoU per expression kind).

    python benchmarks/experiments/film_reference.py --data /tmp/ablation-work3/data --seeds 0 1

``--data`` is the ablation's data folder (made by ``benchmarks/ablation.py``; generated here with
the table's settings when absent). One JSON line per seed goes to stdout and, with ``--log``, to
``benchmarks/experiments/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import ablation as A
import torch
import torch.nn.functional as F
from torch import nn

from rrsis.models.base import SegmentationOutput


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class ConvFiLM(nn.Module):
    """Conv encoder (1/2 … 1/16), each stage modulated by the sentence (FiLM: ``x·(1+γ)+β``), one
    pixel-word attention layer at 1/8, a U-Net-style decoder back to 1/2 and a bilinear 2× up.

    Args:
        vocab_size: tokenizer size.
        widths: channels of the four stages.
        text_dim: word embedding and GRU width.
    """

    def __init__(self, vocab_size: int, widths=(24, 48, 96, 144), text_dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, text_dim, padding_idx=0)
        self.gru = nn.GRU(text_dim, text_dim, batch_first=True, bidirectional=True)
        self.words = nn.Linear(2 * text_dim, text_dim)
        chans = (3, *widths)
        self.stages = nn.ModuleList(_block(chans[i], chans[i + 1], 2) for i in range(4))
        self.film = nn.ModuleList(nn.Linear(text_dim, 2 * c) for c in widths)
        for lin in self.film:  # start as the identity: γ = β = 0
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        c3 = widths[2]
        self.q, self.k, self.v = nn.Conv2d(c3, text_dim, 1), nn.Linear(text_dim, text_dim), nn.Linear(text_dim, c3)
        self.up = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i], 1) for i in range(3)
        )
        self.out = nn.Conv2d(widths[0], 2, 1)

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SegmentationOutput:
        mask = attention_mask.bool()
        w, _ = self.gru(self.embed(input_ids))
        w = self.words(w)                                               # [B, L, D]
        m = mask.unsqueeze(-1).to(w.dtype)
        sent = (w * m).sum(1) / m.sum(1).clamp(min=1.0)                 # [B, D]
        feats, x = [], pixel_values
        for i, (stage, film) in enumerate(zip(self.stages, self.film)):
            x = stage(x)
            gamma, beta = film(sent).chunk(2, dim=-1)
            x = x * (1 + gamma[..., None, None]) + beta[..., None, None]
            if i == 2:  # pixel-word attention at 1/8
                b, c, h, wd = x.shape
                q = self.q(x).flatten(2).transpose(1, 2)                 # [B, HW, D]
                att = q @ self.k(w).transpose(1, 2) / q.shape[-1] ** 0.5  # [B, HW, L]
                att = att.masked_fill(~mask[:, None, :], float("-inf")).softmax(-1)
                x = x + (att @ self.v(w)).transpose(1, 2).reshape(b, c, h, wd)
            feats.append(x)
        y = feats[3]
        for i in (2, 1, 0):
            y = F.interpolate(y, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            y = self.up[i](torch.cat([y, feats[i]], 1))
        return SegmentationOutput(F.interpolate(self.out(y), size=pixel_values.shape[-2:], mode="bilinear",
                                                align_corners=False))


def run_one(spec: dict) -> dict:
    import numpy as np

    from rrsis.allocator import keep_freed_memory
    from rrsis.data import collate_fn
    from rrsis.data.synthetic import vocabulary
    from rrsis.engine.optim import poly_lambda
    from rrsis.losses import ReferringLoss
    from rrsis.text import Tokenizer

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    keep_freed_memory()
    t0 = time.time()
    seed, steps, batch = int(spec["seed"]), int(spec["steps"]), int(spec["batch_size"])
    tok = Tokenizer.from_words(vocabulary())
    train = A.load_split(spec["data"], "train", spec["size"], tok)
    val = A.load_split(spec["data"], "val", spec["size"], tok)
    torch.manual_seed(seed)
    net = ConvFiLM(len(tok))
    opt = torch.optim.AdamW(net.parameters(), lr=spec["lr"], weight_decay=1e-2, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, poly_lambda(steps, 0.9, spec["warmup"]))
    loss_fn = ReferringLoss(0.9, 0.1)
    gen = torch.Generator().manual_seed(seed)
    step, net = 0, net.train()
    while step < steps:
        order = torch.randperm(len(train), generator=gen).tolist()
        for i in range(0, len(order) - batch + 1, batch):
            b = collate_fn([train[j] for j in order[i:i + batch]])
            loss = loss_fn(net(b["pixel_values"], b["input_ids"], b["attention_mask"]), b["mask"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step >= steps:
                break
    t_train = time.time() - t0
    metrics = A.score(net.eval(), val)
    res = dict(metrics.compute())
    kinds = [A.expression_kind(s["text"], bool(s["mask"].any())) for s in val]
    res["kinds"] = {k: float(np.mean([x for x, kk in zip(metrics.ious, kinds) if kk == k]))
                    for k in A.KINDS if k in kinds}
    res.update(params_M=sum(p.numel() for p in net.parameters()) / 1e6, train_s=t_train, seed=seed)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/tmp/ablation-work3/data", help="the ablation's data folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--scenes", type=int, default=1300)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--log", action="store_true", help="append the runs to benchmarks/experiments/results.jsonl")
    a = p.parse_args(argv)
    from rrsis.demo.settings import DEMO_KIND_WEIGHTS

    root = A.make_data(a.data, scenes=a.scenes, size=a.size, seed=0, kind_weights=DEMO_KIND_WEIGHTS)
    specs = [{"seed": s, "steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "warmup": a.warmup,
              "data": root, "size": a.size} for s in a.seeds]
    with ProcessPoolExecutor(min(2, len(specs))) as pool:
        for res in pool.map(run_one, specs):
            line = {"name": "conv-film-reference", "steps": a.steps, "batch_size": a.batch_size,
                    "scenes": a.scenes, **res}
            print(json.dumps(line))
            if a.log:
                with open(ROOT / "benchmarks" / "experiments" / "results.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
