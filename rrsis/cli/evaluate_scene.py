"""``rrsis evaluate --scene``: the whole-scene modes scored on a user's own labelled scene, or
pooled over several (:func:`rrsis.scene.evaluate_scene`); ``rrsis evaluate --data`` is
:mod:`rrsis.cli.evaluate`'s."""

from __future__ import annotations

import argparse
import sys

from .argtypes import fraction as _fraction
from .argtypes import objects as _objects
from .argtypes import pixel_ratio as _pixel_ratio
from .argtypes import positive_int as _positive_int
from .argtypes import scale as _scale

# Flags of one side only, with the value each has when not given (argparse's default).
DATA_ONLY = {"dataset": None, "split": None, "native_resolution": False, "amp": None, "num_workers": None,
             "empty_iou": None, "data_option": []}
SCENE_ONLY = {"labels": None, "text_field": None, "layer": None, "modes": None, "threshold": None,
              "pixel_ratio": None, "tile": None, "overlap": None, "aoi": None, "aoi_crs": None, "bands": None,
              "scale": None, "stretch": None, "keep_predictions": None,
              "asset": None, "per_scene": False, "read": None, "objects": None}


def add_scene_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("your own scene (--scene)", "Each distinct expression of --labels is one query whose "
                             "target is the union of its polygons; every mode runs as rrsis predict runs it, and "
                             "naive (non-overlapping tiles of the model's image_size, each alone: mode tiles "
                             "with overlap 0) always runs beside them.")
    g.add_argument("--labels", metavar="FILE", help="vector file (GeoPackage, GeoJSON, shapefile) of polygons drawn "
                                                    "on the scene, any CRS (required with --scene); several scenes: "
                                                    "one file over all of them, or a template of one file per scene "
                                                    "with {stem} (the stem of the scene's outputs: its file name "
                                                    "without extension, 'area' for /vsigzip/d/area.tif.gz, "
                                                    "'two_second' for GPKG:d/two.gpkg:second) or {id}, "
                                                    "e.g. 'labels/{stem}.gpkg'")
    g.add_argument("--text-field", metavar="FIELD", help="the labels' attribute holding each polygon's expression "
                                                         "(default: text)")
    g.add_argument("--layer", help="the labels' layer, when the file has several")
    g.add_argument("--modes", nargs="+", metavar="MODE",
                   help="modes to score: auto, global, tiles, global-local, object, ranked, naive (default: "
                        "auto naive; naive is added when missing)")
    g.add_argument("--threshold", type=_fraction, help="foreground probability threshold, in (0, 1) (default 0.5)")
    g.add_argument("--pixel-ratio", type=_pixel_ratio,
                   help="scene pixels per model pixel in the tiled passes (default auto: the model's training "
                        "GSD over the scene's, else 1)")
    g.add_argument("--tile", type=_positive_int, help="tile side in model pixels (default: the model's image_size; "
                                                      "naive keeps it)")
    g.add_argument("--overlap", type=float, help="tile overlap in [0, 0.9] (default 0.25; naive: 0)")
    g.add_argument("--read", metavar="WHAT", help="object mode: what to read from each expression besides the "
                   "count, as rrsis predict --read (default place,relation,extreme,colour); run once per "
                   "reading to compare them")
    g.add_argument("--objects", type=_objects, metavar="N|auto|all", help="object mode: how many objects to keep, "
                   "as rrsis predict --objects (default auto)")
    g.add_argument("--aoi", metavar="AOI", help="area of interest (a vector file or minx,miny,maxx,maxy): only its "
                                                "pixels count; expressions whose target lies outside it are skipped")
    g.add_argument("--aoi-crs", metavar="CRS", help="CRS of --aoi bounds (default EPSG:4326)")
    g.add_argument("--bands", help="band numbers counted from 1, as rrsis predict --bands")
    g.add_argument("--scale", type=_scale, help="value scaling, as rrsis predict --scale")
    g.add_argument("--stretch", help="percentile stretch LOW,HIGH or none, as rrsis predict --stretch")
    g.add_argument("--keep-predictions", metavar="DIR",
                   help="keep each mode's masks and GeoJSON in DIR/MODE/ (named as rrsis predict names them); "
                        "default: a temporary folder, removed")
    g.add_argument("--asset", metavar="KEY", help="scenes from STAC: the asset to read (default: the item's asset "
                                                  "with role 'data'); one key (band assets stacked by rrsis "
                                                  "predict: give its OUT/stacks/*.vrt)")
    g.add_argument("--per-scene", action="store_true", help="several scenes: print a row per scene and mode too "
                                                            "(the JSON always holds them)")


def check_sides(args: argparse.Namespace) -> None:
    """``--data`` and ``--scene`` take their own flags: one given with the other is an error."""
    scene = args.scene is not None
    wrong = [k for k, default in (DATA_ONLY if scene else SCENE_ONLY).items() if getattr(args, k) != default]
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise ValueError(f"{flags} appl{'ies' if len(wrong) == 1 else 'y'} to --{'data' if scene else 'scene'}, "
                         f"not to --{'scene' if scene else 'data'}")
    if scene and args.labels is None:
        raise ValueError("--scene needs --labels: the vector file of polygons with their expressions")
    if not scene and args.dataset is None:
        raise ValueError("--data needs --dataset (rrsisd, refsegrs, risbench or folder)")


def _scenes(args: argparse.Namespace):
    """``--scene`` as :func:`~rrsis.scene.evaluate_scene` takes it: one path, or the entries."""
    return args.scene[0] if len(args.scene) == 1 else list(args.scene)


def default_out(args: argparse.Namespace) -> str:
    import os

    from ..scene.evaluate_labels import is_many

    scene = _scenes(args)
    return "eval-scenes.json" if is_many(scene) else f"eval-scene-{os.path.splitext(os.path.basename(scene))[0]}.json"


def _warning_printer():
    said: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if str(message) not in said:  # each mode re-reads the scene: one note, said once
            said.add(str(message))
            print(f"rrsis evaluate: warning: {message}", file=sys.stderr)

    return show


def run_scene(args: argparse.Namespace, out: str) -> int:
    import os
    import warnings

    from ..engine.distributed import resolve_device
    from ..scene import area_of_interest
    from ..scene.evaluate import DEFAULT_EVAL_MODES, check_modes, evaluate_scene, need_geo
    from ..scene.evaluate_labels import is_many, labels_for
    from ..scene.gsd import print_notes
    from ..scene.reading import parse_read
    from ..scene.region import SceneSource, is_gdal_url, resolve_scenes, scene_id
    from ..scene.region.entries import one_asset
    from .argtypes import stretch as _stretch
    from .model_limits import model_limits
    from .model_ref import check_model_ref, loading, revision_of

    # The cheap checks first: a typo must not wait for the model.
    modes = check_modes(args.modes or DEFAULT_EVAL_MODES)
    if args.read is not None:
        parse_read(args.read)
    need_geo()
    scene = _scenes(args)
    many = is_many(scene)
    if many:  # a glob matching nothing, a template naming a missing file
        labels_for(resolve_scenes(scene, one_asset(args.asset, "--asset")), args.labels)
    else:
        if args.asset is not None:
            raise ValueError("--asset chooses a STAC item's asset; --scene is one raster file")
        if not is_gdal_url(scene) and not os.path.isfile(scene):
            raise FileNotFoundError(f"--scene {scene}: file not found")
        if "{" in args.labels:  # a template, filled for this one scene
            labels_for([SceneSource(scene_id(scene), scene)], args.labels)
        elif not is_gdal_url(args.labels) and not os.path.isfile(args.labels):
            raise FileNotFoundError(f"--labels {args.labels}: file not found")
    stretch = _stretch(args.stretch)
    print_notes("rrsis evaluate")  # the pixel_ratio chosen for each scene, and why
    if args.aoi_crs is not None and args.aoi is None:
        raise ValueError("--aoi-crs is the CRS of --aoi; give --aoi too")
    aoi = None if args.aoi is None else area_of_interest(args.aoi, args.aoi_crs)
    options = {k: v for k, v in (("pixel_ratio", args.pixel_ratio), ("tile", args.tile), ("overlap", args.overlap),
                                 ("global_size", args.image_size), ("batch_size", args.batch_size),
                                 ("read", args.read), ("objects", args.objects)) if v is not None}
    check_model_ref(args.model, "evaluate", args.revision)  # a missing folder, one without its vocabulary
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = _warning_printer()
        # The model is loaded once the labels are read: a bad labels file fails first.
        loading(args.model, args.quiet)
        ev = evaluate_scene(args.model, scene, args.labels, text_field=args.text_field or "text",
                            layer=args.layer, modes=modes, threshold=0.5 if args.threshold is None else args.threshold,
                            aoi=aoi, keep_predictions=args.keep_predictions, overwrite=args.overwrite,
                            bands=args.bands, scale=args.scale, stretch=stretch, progress=not args.quiet,
                            load={"map_location": resolve_device(args.device), **revision_of(args), **model_limits(args)},
                            asset=args.asset, **options)
    if many:
        print(f"{len(ev.scenes)} scene(s): {len(ev.modes[0].expressions)} (scene, expression) queries from "
              f"{args.labels}")
    else:
        print(f"{scene}: {len(ev.modes[0].expressions)} expression(s) from {args.labels}")
    print(ev.table())
    if args.per_scene:
        print(ev.scene_table())
    left = ", ".join(f"{k} {v}" for k, v in ev.skipped.items() if v)
    if left:
        print(f"skipped: {left}")
    ev.write_json(out)
    print(f"wrote {out}")
    return 0
