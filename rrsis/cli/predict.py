"""``rrsis predict``: segment what an expression names in one image; write mask and overlay PNGs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="segment one image for one expression",
        description="Writes OUT_mask.png (0/255 at the image's size) and OUT_overlay.png (the "
                    "mask filled semi-transparently and outlined over the image). Nothing is "
                    "written when an input is missing, unreadable or empty.",
    )
    p.add_argument("--model", required=True, help="a save_pretrained directory or a Hub repo id")
    p.add_argument("--image", required=True, help="image file (any size; RGB, grey or RGBA)")
    p.add_argument("--text", required=True, help="the referring expression")
    p.add_argument("--out", required=True, metavar="OUT_PREFIX",
                   help="output prefix: writes OUT_PREFIX_mask.png and OUT_PREFIX_overlay.png")
    p.add_argument("--threshold", type=float, default=0.5, help="foreground probability threshold")
    p.add_argument("--image-size", type=int, help="model input side (default: the model's image_size)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.set_defaults(func=run)


def output_paths(prefix: str) -> tuple[str, str]:
    """``(mask path, overlay path)`` for an output prefix."""
    return f"{prefix}_mask.png", f"{prefix}_overlay.png"


def run(args: argparse.Namespace) -> int:
    import os

    import numpy as np
    import torch

    from ..engine.visualize import overlay, save_png
    from ..hub import from_pretrained
    from ..models.base import load_image

    # Check the cheap inputs before loading the model, so a typo fails at once.
    if not args.text or not args.text.strip():
        raise ValueError("--text is empty: give the expression that names the target")
    if not os.path.isfile(args.image):
        raise FileNotFoundError(f"--image {args.image}: file not found")
    image = load_image(args.image)
    mask_path, overlay_path = output_paths(args.out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else torch.device(args.device)
    model = from_pretrained(args.model, map_location=device)
    mask = model.predict(image, args.text, threshold=args.threshold, image_size=args.image_size)[0]
    pictures = [(mask_path, (mask.astype(np.uint8) * 255)), (overlay_path, overlay(image, mask))]
    folder = os.path.dirname(os.path.abspath(mask_path))
    os.makedirs(folder, exist_ok=True)
    for path, arr in pictures:
        save_png(arr, path)
    share = float(mask.mean()) if mask.size else 0.0
    print(f"{args.text!r}: {int(mask.sum())} pixels ({share:.1%} of the image)")
    print(f"wrote {mask_path}\nwrote {overlay_path}")
    return 0
