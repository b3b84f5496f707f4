"""Quickstart: build a model, segment what an expression names in an aerial scene, save an overlay.

    python examples/quickstart.py                                  # random tiny GL-MSIN (API tour)
    python examples/quickstart.py --model rrsis-demo/gl-msin/final # the model `rrsis demo` trained

Without ``--model`` the network is untrained, so the mask is noise; the calls are the same
ones you make with a trained model (``rrsis.from_pretrained`` on a directory or Hub repo).
"""

from __future__ import annotations

import argparse

import numpy as np

import rrsis
from rrsis.data.synthetic import generate_scene, vocabulary
from rrsis.pictures import overlay, save_png


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a save_pretrained directory or Hub repo (default: random gl-msin-tiny)")
    p.add_argument("--image", help="an image file (default: a generated 128-px scene)")
    p.add_argument("--text", help="the expression (default: one the scene generator wrote)")
    p.add_argument("--out", default="quickstart_overlay.png", help="overlay PNG to write")
    p.add_argument("--size", type=int, default=128, help="side of the generated scene")
    p.add_argument("--tiny", action="store_true", help="smallest settings (tests)")
    args = p.parse_args(argv)

    if args.model:
        model = rrsis.from_pretrained(args.model)
    else:
        # A whole-word vocabulary of the generator's grammar; a real model ships its own.
        tokenizer = rrsis.Tokenizer.from_words(vocabulary())
        model = rrsis.create_model("gl-msin-tiny", image_size=64 if args.tiny else args.size,
                                   text_vocab_size=len(tokenizer))
        model.tokenizer = tokenizer
    size = 64 if args.tiny else args.size
    if args.image:
        image, text = args.image, args.text
        if not text:
            p.error("--text is required with --image")
        picture = rrsis.models.base.load_image(image)
    else:
        scene = generate_scene(index=0, seed=1, size=size)
        picture = scene.image
        text = args.text or scene.expressions[0].text
        image = picture
    mask = model.predict([image], [text])[0]  # bool [H, W] at the image's own size
    save_png(overlay(np.asarray(picture), mask), args.out)
    print(f"{model.arch}: {text!r} -> {int(mask.sum())} of {mask.size} pixels; overlay in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
