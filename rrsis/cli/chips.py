"""``rrsis chips``: a scene and its labelled polygons become a training folder (``risbench`` layout)."""

from __future__ import annotations

import argparse
import shlex
import warnings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chips",
        help="cut a GeoTIFF into training chips around labelled polygons of a vector file",
        description="Cut one chip of a georeferenced scene around each polygon of a vector file (GeoPackage, "
        "GeoJSON, shapefile) whose TEXT_FIELD holds a referring expression; its mask is the polygon with every "
        "other one of the same text in the chip. Writes images/, masks/, output_phrase_{train,val,test}.txt and "
        "chips.json (each chip's place in the scene's CRS), which `rrsis train --data.dataset risbench "
        "--data.root OUT` trains on. Splits are spatial: blocks of BLOCK chips a side go to val, test or train "
        "by a seeded draw, a chip with the block holding its centre; a train chip overlapping a val or test "
        "chip (and a test chip overlapping a val chip) is dropped. The folder appears complete or not at all. Needs rrsis[geo].",
    )
    p.add_argument("--image", required=True, help="the scene: a raster with a CRS and a transform (GeoTIFF, COG, VRT)")
    p.add_argument("--labels", required=True, help="the vector file of polygons")
    p.add_argument("--text-field", default="text", help="the attribute holding each expression (default text)")
    p.add_argument("--out", required=True, help="the folder to write")
    p.add_argument("--size", type=int, default=480, help="chip side in pixels (default 480)")
    p.add_argument("--pixel-ratio", type=float, default=1.0,
                   help="scene pixels per chip pixel (default 1; 2 cuts a 0.25 m scene at 0.5 m)")
    p.add_argument("--layer", help="the vector file's layer (needed when it has several)")
    p.add_argument("--val", type=float, default=0.1, help="share of the blocks drawn for val (default 0.1)")
    p.add_argument("--test", type=float, default=0.1, help="share of the blocks drawn for test (default 0.1)")
    p.add_argument("--block", type=int, default=4, help="a split block's side, in chips (default 4)")
    p.add_argument("--bands", help="band numbers counted from 1 (as GDAL counts) the chips hold, in this order, "
                                   "e.g. 4,3,2 or 4,3,2,8 (default: every band but alpha); rrsis predict on "
                                   "the scene then takes the same --bands")
    p.add_argument("--seed", type=int, default=0, help="seed of the placements and the split draw (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT folder")
    p.set_defaults(func=run, needs_registry=False)


def run(args: argparse.Namespace) -> int:
    from ..scene.chip_stats import stats_option
    from ..scene.chips import write_chips

    # rrsis's own warnings (UserWarning), each printed once after the chips are written; anything
    # else (a library's deprecation notice: rasterio's boundless read through affine 3's `*`) goes
    # where Python's filters send it, which hide it from users.
    shown, caught = warnings.showwarning, []

    def keep(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning):
            caught.append(message)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = keep
        s = write_chips(args.image, args.labels, args.out, text_field=args.text_field, size=args.size,
                        pixel_ratio=args.pixel_ratio, layer=args.layer, val=args.val, test=args.test,
                        seed=args.seed, block=args.block, bands=args.bands, overwrite=args.overwrite)
    for message in caught:
        print(f"warning: {message}")
    total = sum(s.counts.values())
    print(f"wrote {total} chips ({s.image_format}) to {s.out}: "
          + ", ".join(f"{k} {v}" for k, v in s.counts.items()))
    left = {k: v for k, v in s.skipped.items() if v}
    if left:
        print("skipped: " + ", ".join(f"{v} {k}" for k, v in left.items()))
    print(f"train: rrsis train --data.dataset risbench --data.root {shlex.quote(s.out)}"
          + "".join(" " + o for o in s.options))
    if s.mean and not any("--model.mean" in o for o in s.options):  # RGB: ImageNet's suit pretrained weights
        print(f"measured on the train chips (chips.json; for a model trained from scratch): {stats_option(s.mean, s.std)}")
    if args.bands is not None:  # the model trained on these chips reads the same bands of a scene
        print(f"predict: rrsis predict --model MODEL --image {shlex.quote(args.image)} --bands "
              + ",".join(map(str, s.bands)) + " --text TEXT")
    if not s.counts["val"]:
        print("no val chips: add --data.val_split null to train without validation (or lower --block)")
    return 0
