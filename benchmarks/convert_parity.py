"""How closely converted official checkpoints reproduce the official forward pass (CPU, float32).

For each official-format fixture (a small LAVT and RMSIN saved by the official code, with the
official forward's inputs and outputs: ``shared/fixtures/{lavt,rmsin}``), the checkpoint is
converted with ``rrsis.convert.convert_checkpoint`` and loaded back with ``rrsis.from_pretrained``;
the converted model's BERT features, backbone stages and logits are compared with the official
ones. The error is relative: max |rrsis − official| / max |official|, at 1 and 2 threads.

    python benchmarks/convert_parity.py            # writes results/convert-parity-cpu.{json,md}
    RRSIS_FIXTURES=/path/to/fixtures python benchmarks/convert_parity.py

The fixtures are looked for in ``$RRSIS_FIXTURES`` and ``../shared/fixtures`` beside the checkout.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import _common as C

ARCHS = ("lavt", "rmsin")
MARKER = Path("rmsin") / "io.safetensors"


def fixtures() -> Path:
    for candidate in (os.environ.get("RRSIS_FIXTURES", ""), str(ROOT.parent / "shared" / "fixtures")):
        if candidate and (Path(candidate) / MARKER).exists():
            return Path(candidate)
    raise SystemExit("convert_parity.py: no fixtures found: set RRSIS_FIXTURES to the folder holding lavt/ and rmsin/")


def relative(a, b) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def measure(arch: str, folder: Path, threads: int) -> dict:
    import torch
    from safetensors.torch import load_file

    import rrsis
    from rrsis.convert import convert_checkpoint

    torch.set_num_threads(threads)
    io = load_file(str(folder / arch / "io.safetensors"))
    with tempfile.TemporaryDirectory() as tmp:
        # The fixtures' BERT has 4 heads (the official code's default BERT-base has 12).
        out = convert_checkpoint(folder / arch / "checkpoint.pth", Path(tmp) / arch, arch=arch, text_heads=4)
        model = rrsis.from_pretrained(out)
    with torch.no_grad():
        words = model.text_encoder(io["input_ids"], io["attention_mask"])
        feats = model.backbone(io["image"], words, io["attention_mask"].float())
        logits = model(io["image"], io["input_ids"], io["attention_mask"]).logits
    stage = "swin_stage" if arch == "rmsin" else "stage"
    return {
        "arch": arch, "threads": threads, "image": list(io["image"].shape),
        "text_features": relative(words, io["text_features"]),
        "stages": [relative(f, io[f"{stage}{i}"]) for i, f in enumerate(feats, start=1)],
        "logits": relative(logits, io["logits"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="thread counts to run at (default 1,2)")
    args = parser.parse_args(argv)
    folder = fixtures()
    rows = [measure(arch, folder, int(t)) for t in args.threads.split(",") for arch in ARCHS]
    env = C.environment("cpu")
    env["cpu"] = platform.processor() or platform.machine()
    date = _dt.date.today().isoformat()
    lines = [f"# Converted official checkpoints against the official forward (CPU, float32), {date}", "",
             "Relative error max |rrsis − official| / max |official| on the fixtures' inputs "
             "(`benchmarks/convert_parity.py`; torch " + env["torch"] + ").", "",
             "| model | threads | input | BERT features | backbone stages (max) | logits |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['threads']} | {'×'.join(map(str, r['image']))} | {r['text_features']:.2e} "
                     f"| {max(r['stages']):.2e} | {r['logits']:.2e} |")
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    C.write_results(str(C.RESULTS / "convert-parity-cpu"), {"environment": env, "rows": rows}, markdown)
    print(f"wrote {C.RESULTS / 'convert-parity-cpu'}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
