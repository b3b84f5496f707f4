"""``rrsis synth``: write a synthetic referring-segmentation dataset (RRSIS-D and/or RefSegRS)."""

from __future__ import annotations

import argparse
import json

from .argtypes import workers


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="generate synthetic aerial scenes with referring expressions",
        description="Generate procedural aerial scenes with referring expressions and exact "
        "masks, written in the RRSIS-D (REFER) and/or RefSegRS layouts, plus stats.json.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder")
    p.add_argument("--n-scenes", type=int, help="number of scenes (default 100; 1 with --large)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=256, help="scene side in pixels (default 256)")
    p.add_argument("--layout", choices=["rrsisd", "refsegrs", "both"], default="both")
    p.add_argument("--expressions-per-scene", type=int, default=4)
    p.add_argument("--splits", type=float, nargs=3, default=(0.8, 0.1, 0.1),
                   metavar=("TRAIN", "VAL", "TEST"), help="scene shares (default 0.8 0.1 0.1)")
    p.add_argument("--no-target-frac", type=float, default=0.0,
                   help="share of no-target expressions (default 0)")
    p.add_argument("--min-objects", type=int, default=3)
    p.add_argument("--max-objects", type=int, default=7)
    p.add_argument("--object-scale", type=float, default=1.0, help="multiplies object sizes")
    p.add_argument("--min-object-frac", type=float, default=0.10,
                   help="smallest object length as a fraction of the scene side")
    p.add_argument("--image-format", choices=["png", "jpg"], default="png",
                   help="RRSIS-D image encoding (png is lossless)")
    p.add_argument("--nir", action="store_true",
                   help="add a near-infrared band (4-band uncompressed TIFFs, R, G, B, NIR), a vegetated and a "
                        "bare plot or a dry and a wet pond per scene (alike in RGB), and expressions that need "
                        "the band ('the vegetated plot', 'the dry pond'); read with bands=(1, 2, 3, 4) or a "
                        "model built with in_chans=4")
    p.add_argument("--large", action="store_true",
                   help="write N-SCENES large georeferenced scenes instead (4-band uint16 GeoTIFF, "
                        "object-id raster, expressions naming one object each; needs rrsis[geo]); "
                        "e.g. --large --size 8192; 6-10 objects unless --min/--max-objects say otherwise")
    p.add_argument("--render-size", type=int,
                   help="--large: side at which the layout is rendered (default min(size, 2048))")
    p.add_argument("--train-size", type=int,
                   help="--large: draw objects at the pixel sizes of TRAIN_SIZE² training scenes (e.g. 96 for "
                        "`rrsis demo`), with scene-level expressions of six kinds (colour, region, extreme, "
                        "relation, multi, none) and an RGB GeoTIFF; see rrsis.data.synthetic.at_scale")
    p.add_argument("--density", type=float, default=0.35,
                   help="--train-size: objects per TRAIN_SIZE² of scene (default 0.35)")
    p.add_argument("--palette", nargs="*", default=[], metavar="COLOUR=WEIGHT",
                   help="--train-size: relative weight of drawing a colour (default 1 each), e.g. red=3 white=0.5")
    p.add_argument("--per-kind", type=int, default=2, help="--train-size: expressions of each kind per scene (default 2)")
    p.add_argument("--workers", type=workers("--workers"), default=1,
                   help="processes that make the scenes (default 1; the files are the same for any number)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar; one line a set or scene, naming where it went (no statistics, no expressions)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synthetic import generate

    if args.large:
        if args.nir:
            raise ValueError("--nir is for the small-scene sets (--large scenes already carry 4 bands)")
        return _large(args)
    if args.n_scenes is None:
        args.n_scenes = 100

    stats = generate(
        args.out_dir, args.n_scenes, seed=args.seed, size=args.size, layout=args.layout,
        splits=args.splits, expressions_per_scene=args.expressions_per_scene,
        no_target_frac=args.no_target_frac, min_objects=args.min_objects,
        max_objects=args.max_objects, object_scale=args.object_scale,
        min_object_frac=args.min_object_frac, image_format=args.image_format,
        progress=not args.quiet, workers=args.workers, nir=args.nir,
    )
    share = stats["non_unique_target_share"]
    print(f"wrote {stats['n_scenes']} scenes, {stats['n_expressions']} expressions to "
          f"{args.out_dir} ({', '.join(stats['layouts'])})" + (f"; statistics in {args.out_dir}/stats.json"
                                                             if args.quiet else ""))
    if args.quiet:  # one line: where everything went
        return 0
    print(f"targets with a same-category distractor: {share:.1%}")
    print(json.dumps(stats, indent=2, sort_keys=True))
    return 0


def _large(args: argparse.Namespace) -> int:
    from ..data.synthetic.large import write_large_scene
    from ..scene.read import require_geo

    require_geo("rrsis synth --large")
    if args.n_scenes is None:
        args.n_scenes = 1
    if args.n_scenes < 1:
        raise ValueError(f"--n-scenes must be at least 1, got {args.n_scenes}")
    if args.workers != 1:
        raise ValueError("--workers is for the small-scene sets; --large writes its scenes one by one")
    if args.train_size is not None:
        return _at_scale(args)
    # Large scenes hold more objects unless asked otherwise.
    lo, hi = (6, 10) if (args.min_objects, args.max_objects) == (3, 7) else (args.min_objects, args.max_objects)
    for k in range(args.n_scenes):
        meta = write_large_scene(args.out_dir, args.size, seed=args.seed + k, render_size=args.render_size,
                                 n_expressions=args.expressions_per_scene, min_objects=lo, max_objects=max(hi, lo), name=f"scene{k}")
        print(f"wrote {args.out_dir}/{meta['image']} ({args.size}x{args.size}, {len(meta['objects'])} "
              f"objects) with {meta['labels']} and scene{k}.json" + ("" if args.quiet else ":"))
        for e in [] if args.quiet else meta["expressions"]:
            print(f"  {e['text']!r} -> object {e['object']} ({e['kind']})")
    return 0


def _palette(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, weight = item.partition("=")
        try:
            out[name] = float(weight)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--palette takes COLOUR=WEIGHT items (e.g. red=3), got {item!r}")
    return out


def _at_scale(args: argparse.Namespace) -> int:
    from ..data.synthetic.at_scale import LargeSceneSettings, write_scene_at_scale

    settings = LargeSceneSettings(size=args.size, train_size=args.train_size, density=args.density,
                                  palette=_palette(args.palette), object_scale=args.object_scale,
                                  per_kind=args.per_kind)
    for k in range(args.n_scenes):
        meta = write_scene_at_scale(args.out_dir, settings, seed=args.seed + k, name=f"scene{k}")
        print(f"wrote {args.out_dir}/{meta['image']} ({args.size}x{args.size}, {len(meta['objects'])} objects at "
              f"{args.train_size}-px training scale) with {meta['labels']} and scene{k}.json" + ("" if args.quiet else ":"))
        for e in [] if args.quiet else meta["expressions"]:
            print(f"  {e['text']!r} -> {e['targets'] or 'nothing'} ({e['kind']})")
    return 0
