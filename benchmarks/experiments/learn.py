"""Learning-efficiency experiments on the demo's data (issue 16): one variant, one seed per call.

    python benchmarks/experiments/learn.py NAME SEED STEPS '{"model overrides": ...}' \
        ['{"optim": {...}, "loss": {...}}'] >> log.jsonl

The data are the demo's (800 scenes, 96 px, the demo's kind mix, data seed = SEED), so a
variant is judged on exactly what ``rrsis demo --seed SEED`` trains on, with its optimiser
(torch's fused AdamW; runs logged before it was the demo's have no ``optim`` field); one thread.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ablation import make_data, run_one


def apply_inits(model, names) -> None:
    """Initialisation variants tried on a freshly built model (before training)."""
    import torch
    from torch import nn

    for name, m in model.named_modules():
        cls = type(m).__name__
        if "zero_gem" in names and cls == "GlobalEnhancementModule":
            nn.init.zeros_(m.proj.weight)
            nn.init.zeros_(m.proj.bias)
        if "zero_elsa" in names and cls == "ELSAAttention":
            nn.init.zeros_(m.proj.weight)
            nn.init.zeros_(m.proj.bias)
        if "zero_mlp" in names and cls in ("ELSABlock", "SwinBlock"):
            nn.init.zeros_(m.mlp.fc2.weight)
            nn.init.zeros_(m.mlp.fc2.bias)
        if "zero_refine" in names and cls == "IterativeRefinementHead":
            for blk in m.refine:
                nn.init.zeros_(blk[1][1].weight)  # last BN of each refinement block
        if "gate_bias" in names and cls == "LanguageGate" and len(m):
            # a wider first layer init so the gate starts at ~tanh(O(1)) instead of ~0.01
            nn.init.kaiming_uniform_(m[0].weight, a=5 ** 0.5)
            nn.init.kaiming_uniform_(m[2].weight, a=5 ** 0.5)
        if "default_linear" in names and isinstance(m, nn.Linear) and name.startswith("backbone"):
            m.reset_parameters()
    if "pwam_pos" in names:
        for m in model.modules():
            if type(m).__name__ == "PixelWordAttention":
                _add_query_position(m)
    if "text_std" in names:
        for _n, p in model.text_encoder.named_parameters():
            if p.dim() == 2:
                with torch.no_grad():
                    p.mul_(5.0)


def _add_query_position(pwam) -> None:
    """Experiment: add a zero-initialised 1x1 projection of the pixel's (y, x) in [-1, 1] to the
    PWAM queries, so words can attend by absolute position (the module's own forward runs; only
    the input of its pixel-word attention gains the position term)."""
    import torch
    from torch import nn

    pwam.query_pos = nn.Conv1d(2, pwam.vis_project[0].in_channels, 1)
    nn.init.zeros_(pwam.query_pos.weight)
    nn.init.zeros_(pwam.query_pos.bias)
    attend = pwam.image_lang_att.forward
    grid = {}

    def remember_grid(module, args):
        grid["hw"] = args[0].shape[-2:]

    def with_position(x, words, mask):
        hh, ww = grid["hw"]
        ys = torch.linspace(-1, 1, hh, dtype=x.dtype, device=x.device)
        xs = torch.linspace(-1, 1, ww, dtype=x.dtype, device=x.device)
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij")).view(1, 2, hh * ww)
        return attend(x + pwam.query_pos(coords), words, mask)

    pwam.register_forward_pre_hook(remember_grid)
    pwam.image_lang_att.forward = with_position


def main() -> None:
    name, seed, steps, over = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    from rrsis.demo.settings import DEMO_KIND_WEIGHTS, DEMO_MODEL, DemoConfig

    d = DemoConfig()
    work = Path("/tmp/learn")
    scenes = extra.get("scenes", d.scenes)
    data = make_data(str(work / (f"data-{seed}" if scenes == d.scenes else f"data-{seed}-{scenes}")), scenes=scenes,
                     size=d.size, seed=seed, kind_weights=DEMO_KIND_WEIGHTS)
    spec = {
        "model": extra.get("model", "gl-msin-tiny"), "overrides": {**DEMO_MODEL, **over}, "seed": seed,
        "steps": steps, "batch_size": extra.get("batch_size", d.batch_size), "lr": extra.get("lr", d.lr),
        "warmup": extra.get("warmup", d.warmup_steps), "data": data, "size": d.size,
        "shuffle": extra.get("shuffle", False), "optim": {"fused": True, **extra.get("optim", {})}, "loss": extra.get("loss", {}),
        "train": extra.get("train", {}), "oversample": extra.get("oversample"),
        "out": str(work / "runs" / f"{name}-s{seed}-{steps}"),
        "post_init": "learn:apply_inits" if extra.get("init") else None, "post_init_args": extra.get("init", []),
        "curve": True, "flush_denormal": extra.get("flush_denormal", True), "ema": extra.get("ema"),
    }
    res = run_one(spec)
    k = res["kinds"]
    print(json.dumps({"name": name, "seed": seed, "steps": steps, "over": over, "extra": extra, "optim": spec["optim"],
                      "mIoU": round(100 * res["mIoU"], 2), "oIoU": round(100 * res["oIoU"], 2),
                      "P@0.5": round(100 * res["P@0.5"], 2),
                      "kinds": {a: round(100 * b, 1) for a, b in k.items()}, "counts": res["kind_counts"],
                      "train_s": round(res["train_s"]),
                      **({"ema_mIoU": {d: round(100 * v, 2) for d, v in res["ema"].items()}} if res["ema"] else {}),
                      "curve": [(a, round(100 * b, 1)) for a, b in res.get("curve", [])], "params_M": round(res["params_M"], 3)}), flush=True)


if __name__ == "__main__":
    main()
