"""``rrsis predict``: segment what an expression names in an image or a whole scene.

A plain image gives ``OUT_mask.png`` and ``OUT_overlay.png``; a georeferenced raster gives
``OUT_mask.tif`` (a Cloud-Optimized GeoTIFF in the input's CRS and transform), ``OUT.geojson``
and ``OUT_overlay.png`` (placed by ``OUT_overlay.pgw`` and ``OUT_overlay.png.aux.xml``).
Everything that can be checked without the model (flags, the image, the outputs) is checked
before the model is loaded.
"""

from __future__ import annotations

import argparse
import re
import sys

from . import argtypes
from .model_limits import add_model_limits, model_limits
from .model_ref import add_revision, check_model_ref, loading, no_vocabulary, revision_of
from .predict_sources import (
    band_files_hint,
    build_mosaic,
    build_stack,
    check_early,
    is_region,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="segment an image, a whole (georeferenced) scene or a region of many scenes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
One image: a plain image gives OUT_mask.png (0/255 at the image's size) and OUT_overlay.png.
A georeferenced raster (GeoTIFF, COG, JP2, ...; needs pip install "rrsis[geo]") gives
OUT_mask.tif (a Cloud-Optimized GeoTIFF: 512-pixel tiles, DEFLATE, overviews) with the input's
CRS and transform and a valid-data mask (the input's nodata pixels are masked, 0 in the band: the
file has no nodata value), OUT.geojson (polygons with areas, WGS 84 by default) and
OUT_overlay.png with a world file (OUT_overlay.pgw) and its CRS (OUT_overlay.png.aux.xml),
read and written window by window. Several --text:
OUT_1_*, OUT_2_*, ... An OUT that is a folder (or ends with /) gets OUT/IMAGESTEM_mask.tif etc.
The files of one expression appear together or not at all, each expression's result line
printed when they are; existing outputs are refused unless --overwrite, or --resume: keep the
expressions done with the same model and settings (recorded in the mask's RRSIS_* tags and the
GeoJSON's "rrsis" member), write the others. --text @FILE reads expressions from FILE (a JSON
list of strings, a CSV's text or expression column, else one a line).

A region (several --image values, a quoted glob, @list.txt or list.txt of paths or URLs, or
a STAC item / item collection .json): OUT is a folder; each scene goes to OUT/SCENE_ID/
(SCENE_ID: the file or STAC item name) with a done.json written last, and every polygon of
every scene done goes to OUT/merged.gpkg (scene, expression, area_px, area_m2,
mean_probability, source; in the GeoJSONs' CRS, EPSG:4326 unless --geojson-crs, not the
scenes' own); OUT/region.json lists each scene's source, status and files.
A rerun skips the scenes already done with the same texts, settings, model and files (unless
--overwrite) and finishes the others, so a killed run, or one with scenes that failed, is
finished by running the same command again. Under torchrun the scenes are shared among the
ranks and rank 0 writes the merged file once all have finished:

  rrsis predict --model M --image "tiles/*.tif" --text "the storage tanks" --out region
  torchrun --nproc_per_node 4 -m rrsis predict --model M --image items.json --asset visual \\
      --text "the storage tanks" --out region --merged region/tanks.parquet

Each scene of a region is asked on its own ("the largest building": one per scene). To ask
once over an area delivered as tiles, add --mosaic: the tiles are read as one scene through
OUT_mosaic.vrt (a GDAL virtual raster; nothing is copied), with the single-scene outputs. Tiles
not on one pixel grid (other CRSs, e.g. two UTM zones, pixel sizes, rotated, placed by GCPs or
RPCs) are warped, bilinear, onto one (in --mosaic-crs, default the CRS of most of their valid area;
the finest pixel size) through warped VRTs in OUT_mosaic_warped/, tile by tile as read:

  rrsis predict --model M --image "tiles/*.tif" --mosaic --text "the largest building" --out area

A scene delivered as one file per band (Landsat, Sentinel-2) is read as one with --stack: the files'
bands in the order given (a quoted glob: sorted by name) through OUT_stack.vrt, coarser bands
resampled onto the finest grid; --stack-colours declares which band is red, green, blue:

  rrsis predict --model M --image B04.jp2 B03.jp2 B02.jp2 --stack --stack-colours red,green,blue \\
      --text "the largest building" --out scene

--aoi asks only inside an area of interest: a vector file (GeoJSON, GeoPackage, shapefile: its
features unioned, in its own CRS) or bounds minx,miny,maxx,maxy (in --aoi-crs, default EPSG:4326:
longitude, latitude). Only the scene's pixel window covering it is read; the mask covers that
window on the scene's grid, nodata outside the area; polygons are clipped to it. In a region the
scenes it misses are skipped and listed; with --mosaic it cuts the mosaic:

  rrsis predict --model M --image scene.tif --text "the storage tanks" --out port --aoi harbour.geojson
  rrsis predict --model M --image scene.tif --text "the storage tanks" --out port \\
      --aoi=-70.30,43.62,-70.22,43.68
""",
    )
    p.add_argument("--model", required=True, help="a save_pretrained directory or a Hub repo id")
    add_revision(p)
    p.add_argument("--image", required=True, nargs="+", action="extend", metavar="IMAGE",
                   help="image or raster file (any size); for a region several files (or repeated "
                        "--image), a quoted glob, @list.txt or list.txt (paths or URLs GDAL reads, "
                        "one a line), or a STAC item / item collection .json")
    p.add_argument("--text", required=True, action="append",
                   help="the referring expression (repeat for several); @FILE: the expressions in FILE (UTF-8): "
                        "a .json list of strings, the text or expression column of a .csv with a header row, "
                        "else one a line (blank lines and # comments skipped); @@TEXT: the expression @TEXT")
    p.add_argument("--out", required=True, metavar="OUT_PREFIX",
                   help="output prefix, or a folder (existing, or ending with /): files named after "
                        "the image inside it")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--resume", action="store_true", help="one scene: keep each expression's files done with the "
                   "same model and settings (as their mask records), write the others' (a region resumes without it)")
    p.add_argument("--threshold", type=argtypes.fraction, default=0.5,
                   help="foreground probability threshold, in (0, 1)")
    p.add_argument("--mode", choices=["auto", "global", "tiles", "global-local", "object", "ranked"], default="auto",
                   help="global: whole image at model size; tiles: sliding windows; global-local: "
                        "global picks the object, tiles delineate it; object: tiles propose objects, "
                        "the ones they are surest of are the answer; ranked: the model's scene ranker "
                        "picks among them; auto: global up to 2 tiles a side, object above (default)")
    p.add_argument("--objects", type=argtypes.objects, default="auto", metavar="N|auto|all",
                   help="object mode: how many objects to keep, the surest first: auto (default) "
                        "reads it from each expression (\"the two storage tanks\": 2; \"all "
                        "ships\", \"the ships\": every one; otherwise 1), N keeps N, all keeps every one")
    p.add_argument("--read", default="place,relation,extreme,colour", metavar="WHAT",
                   help="object mode: what else to read from the expression, besides the count, comma-"
                        "separated: place (\"in the north-west\" keeps the objects there), relation "
                        "(\"next to the white plane\", \"north of the road\": a second pass over the scene "
                        "finds that object; of its surest few, the one with the surest and nearest objects in that "
                        "relation to it is kept, and they are), extreme "
                        "(\"the largest\", \"the northernmost\": the most extreme of the few surest "
                        "objects), colour (\"the white tank\": of the surest objects, the one nearest that "
                        "colour on the scene's pixels; RGB scenes), or none (the surest objects); default "
                        "place,relation,extreme,colour")
    p.add_argument("--tile", type=argtypes.positive_int,
                   help="tile side in model pixels, a positive multiple of 32, at least 64 (default: the "
                        "model's image_size)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction in [0, 0.9] (default 0.25)")
    p.add_argument("--pixel-ratio", type=argtypes.pixel_ratio, default="auto",
                   help="scene pixels per model pixel in the tiled pass (>1 for very fine GSD; called --scale "
                        "before 0.2); auto (default): the model's training GSD over the scene's, else 1")
    p.add_argument("--bands", help="band numbers counted from 1 (as GDAL counts) shown as R,G,B, "
                                   "e.g. 4,3,2 (default: those declared red, green, blue, else the first three); as many as a model of another "
                                   "band count takes, e.g. 4,3,2,8 (default: all, if it has that many)")
    p.add_argument("--scale", type=argtypes.scale,
                   help="value scaling of 16-bit/float data, as model.predict's scale=: dtype, max, "
                        "minmax or a divisor (default: the model's own, recorded by rrsis train from "
                        "data.options.scale, else the --stretch)")
    p.add_argument("--stretch", help="percentile stretch LOW,HIGH, or 'none' (float values in 0-1 as they "
                                     "are), when --scale is not given (default: 2,98 for 16-bit/float "
                                     "rasters, none for 8-bit)")
    p.add_argument("--probabilities", action="store_true",
                   help="mask GeoTIFF holds the probability p as round(255*p), overviews averaged, "
                        "with a scale of 1/255 so a GIS reads 0-1, instead of 0/255 (overviews by "
                        "nearest neighbour)")
    p.add_argument("--geojson-crs", default="EPSG:4326",
                   help="CRS of the GeoJSON: EPSG:4326 (RFC 7946, default), 'native' or any CRS")
    p.add_argument("--crs", help="CRS of a raster that has a transform but no CRS (e.g. EPSG:32633), so "
                                 "the outputs are georeferenced; 'none' accepts PNG outputs without "
                                 "georeference (without either, such a raster is refused)")
    p.add_argument("--aoi", metavar="AOI",
                   help="area of interest: a vector file (GeoJSON, GeoPackage, shapefile; features unioned) "
                        "or bounds minx,miny,maxx,maxy (write --aoi=-70.3,... when the first is negative); only the "
                        "scene's pixels covering it are read")
    p.add_argument("--aoi-crs", metavar="CRS",
                   help="CRS of --aoi bounds (default EPSG:4326: longitude, latitude), or of a vector file "
                        "that has none")
    p.add_argument("--simplify", type=argtypes.non_negative, default=0.5,
                   help="polygon tolerance in pixels, >= 0 (0: exact pixel outlines)")
    p.add_argument("--image-size", type=argtypes.positive_int,
                   help="global-pass input side, a positive multiple of 32, at least 64 (default: the "
                        "model's image_size)")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=8, help="tiles per forward pass")
    p.add_argument("--max-pixels", type=argtypes.positive_int, default=None,
                   help="largest plain image (PNG, JPEG, ...) read whole into memory, width x height "
                        "(default 40,000,000); rasters read through rasterio go window by window "
                        "and are not bounded")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    argtypes.add_threads(p)
    p.add_argument("--asset", metavar="KEY",
                   help="region from STAC: the asset to read (default: the item's asset with role 'data'); "
                        "several, comma-separated (red,green,blue,nir): each item is one scene of those "
                        "bands in that order, read through OUT/stacks/ITEM.vrt")
    p.add_argument("--mosaic", action="store_true",
                   help="region: read the scenes as one (a GDAL VRT, OUT_PREFIX_mosaic.vrt) and ask each "
                        "expression once over the whole area, instead of once per scene; scenes not on one "
                        "pixel grid are warped onto one (OUT_PREFIX_mosaic_warped/); they must share a band "
                        "count, data type and nodata value (paletted scenes are read as their colours, "
                        "and RGB ones may join them)")
    p.add_argument("--mosaic-crs", metavar="CRS",
                   help="--mosaic: the mosaic's CRS, e.g. EPSG:32633 (default: the CRS holding most of the "
                        "scenes' valid ground area); scenes in other CRSs are warped into it")
    p.add_argument("--stack", action="store_true",
                   help="read the --image files as bands of one scene, in the order given (a quoted glob: "
                        "sorted by name; a list file: its order), through a GDAL VRT, OUT_PREFIX_stack.vrt: "
                        "one CRS and area, one data type; coarser bands resampled, bilinear, onto the finest grid")
    p.add_argument("--stack-colours", metavar="C1,C2,...",
                   help="--stack: each band's colour, in order, e.g. red,green,blue,undefined (default: each "
                        "file's own); bands declared red, green, blue are what an RGB model reads")
    p.add_argument("--merged", metavar="PATH",
                   help="region: the merged polygon file, .gpkg (GeoPackage) or .parquet (GeoParquet, "
                        "needs pyarrow) (default: OUT/merged.gpkg), in the scenes' GeoJSON CRS (EPSG:4326 "
                        "unless --geojson-crs; with 'native', the scenes' CRS if they share one, else "
                        "EPSG:4326), not the scenes' own")
    p.add_argument("--barrier-timeout", type=argtypes.positive_float, metavar="SECONDS",
                   help="region under torchrun: how long rank 0 waits for the other ranks' scenes "
                        "before failing without merging (default: the process group's, 30 min)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_limits(p)
    p.set_defaults(func=run, precheck=check_early)


def _note(message: str) -> None:
    argtypes.stderr_line(f"rrsis predict: note: {message}")


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # The API names an expression by its index ("text 0: ..."); here the --text values count from 1.
    message = re.sub(r"^text (\d+):", lambda m: f"--text {int(m[1]) + 1}:", str(message))
    argtypes.stderr_line(f"rrsis predict: warning: {message}")  # its own line, also under a bar


def run(args: argparse.Namespace) -> int:
    import os
    import warnings

    import torch

    from .._lock import output_lock
    from ..data.expressions import check_expressions
    from ..data.io import MAX_PIXELS
    from ..hub import from_pretrained
    from ..scene import (
        area_of_interest,
        check_georeference,
        check_outputs,
        open_aoi_scene,
        open_scene,
        output_paths,
        output_prefixes,
        segment_scene,
    )
    from ..scene.gsd import print_notes
    from ..scene.outputs import RESUME

    print_notes("rrsis predict")  # the pixel_ratio chosen for each scene, and why
    # Check the cheap inputs before loading the model, so a typo fails at once (check_early's first).
    check_expressions(args.text, "--text", first=1)  # the 1st --text is --text 1, as bands count
    stretch = argtypes.stretch(args.stretch)
    if args.aoi is not None:  # read (a file) and checked once, before the model loads
        args.aoi = area_of_interest(args.aoi, args.aoi_crs)
        args.aoi_crs = None
    if args.stack:
        args.image = [build_stack(args)]
    elif args.mosaic:
        args.image = [build_mosaic(args)]
        args.asset = None
    if args.stack or args.mosaic:
        check_model_ref(args.model, "predict", args.revision)  # once the VRT's files are read (check_early's others)
    elif is_region(args.image):
        return _run_region(args, stretch)
    args.image = args.image[0]
    max_pixels = MAX_PIXELS if args.max_pixels is None else args.max_pixels
    # A missing geo extra is an ImportError: cli/__init__.py's one exit-code map makes it 2.
    # The API's messages name the Python keyword and this command's flag (max_pixels= and
    # --max-pixels, crs= and --crs, scale= and --scale).
    # Opened before the model, to check it cheaply; --bands naming other than 1 or 3 bands is for a
    # model of that many, which reads the file again with its own band count below.
    rgb_bands = args.bands is None or len(args.bands.replace(" ", ",").strip(",").split(",")) in (1, 3)
    first = {"bands": args.bands if rgb_bands else None, "scale": args.scale, "stretch": stretch,
             "max_pixels": max_pixels, "crs": args.crs}
    # With --aoi only the area's window is opened (and later segmented, from its path).
    with warnings.catch_warnings(record=True) as opened:  # shown below unless the model's read warns itself
        warnings.simplefilter("always", UserWarning)
        scene = open_scene(args.image, **first) if args.aoi is None else open_aoi_scene(args.image, args.aoi, **first)[0]
    with scene, output_lock(output_prefixes(args.out, 1, scene.name)[0], folder=False, command="rrsis predict",
                            note=_note):  # one run at a time on these outputs, before the model loads
        check_georeference(scene)
        prefixes = output_prefixes(args.out, len(args.text), scene.name)
        outputs = [p for pre in prefixes for p in output_paths(pre, scene.georeferenced).values()]
        if args.aoi is not None and args.aoi.path in {os.path.abspath(p) for p in outputs}:
            raise ValueError(f"--aoi {args.aoi.path}: an output of --out {args.out} would replace it; choose "
                             "another --out")
        check_outputs(outputs, args.overwrite or args.resume, resume=RESUME)  # --resume: checked once loaded
        argtypes.set_threads(args)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
            else torch.device(args.device)
        loading(args.model, args.quiet)
        model = from_pretrained(args.model, map_location=device, **revision_of(args), **model_limits(args))
        if model.tokenizer is None:  # a Hub repo without vocab.txt (a local folder is refused before)
            raise ValueError(no_vocabulary(args.model, "predict"))
        with warnings.catch_warnings():
            # The API's warnings (an expression cut or unknown to the vocabulary), one line each.
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = _print_warning
            # Read again for a model of another band count, or one that records its training
            # data's value scaling (the default when neither --scale nor --stretch is given).
            own_scale = args.scale is None and stretch == "auto" and getattr(model, "pixel_scale", None) is not None
            named = args.bands is None and getattr(model, "band_names", None) is not None  # read by name
            again = getattr(model, "in_chans", 3) != 3 or not rgb_bands or own_scale or named or args.aoi is not None
            read = {"bands": args.bands, "scale": args.scale, "stretch": stretch, "max_pixels": max_pixels,
                    "crs": args.crs} if again else {}
            for w in [] if again else opened:  # read again: that read's own warnings, once
                _print_warning(w.message, w.category, w.filename, w.lineno)
            total = scene.height * scene.width
            where = "the image" if args.aoi is None else "the area of interest's window"
            segment_scene(
                model, args.image if again else scene, args.text, mode=args.mode, threshold=args.threshold,
                out=args.out, **read,
                probabilities=args.probabilities, geojson_crs=args.geojson_crs, simplify=args.simplify,
                progress=not args.quiet, tile=args.tile, overlap=args.overlap, pixel_ratio=args.pixel_ratio,
                global_size=args.image_size, batch_size=args.batch_size, overwrite=args.overwrite,
                objects=args.objects, read=args.read, aoi=args.aoi, resume=args.resume,
                on_result=lambda r: _print_result(r, args, total, where),
            )
    return 0


def _print_result(r, args: argparse.Namespace, total: int, where: str) -> None:
    """One expression's result lines, printed as soon as its files are in place."""
    if args.aoi is not None and r.text == args.text[0]:
        r0, c0, r1, c1 = r.window
        print(f"area of interest: rows {r0}-{r1}, columns {c0}-{c1} of {args.image}")
    area = f", {r.area_m2:,.0f} m²" if r.area_m2 is not None else ""
    polys = f", {r.n_polygons} polygon(s)" if r.n_polygons is not None else ""
    mode = r.mode if r.reading is None else f"{r.mode}: {r.reading}"
    done = ", done before (same model and settings)" if r.already_done else f", {r.seconds:.1f} s"
    polys += f", {r.tiles_skipped} tile(s) with no valid pixel skipped" if r.tiles_skipped else ""
    print(f"{r.text!r} ({mode}): {r.area_px} pixels ({r.area_px / total:.1%} of {where}){area}{polys}{done}",
          flush=True)
    for path in r.files.values():
        print(f"{'kept' if r.already_done else 'wrote'} {path}", flush=True)


def _run_region(args: argparse.Namespace, stretch) -> int:
    import contextlib
    import os
    import warnings

    from .._lock import run_lock
    from ..data.io import MAX_PIXELS
    from ..engine.distributed import cleanup_distributed, setup_distributed
    from ..hub import from_pretrained
    from ..scene.region import check_merged_path, resolve_scenes, segment_scenes

    # Missing files fail before the model loads; several assets are stacked in OUT/stacks/ as each
    # scene is segmented (a done scene's stack is left as it is).
    scenes = resolve_scenes(args.image, asset=args.asset, stack_dir=os.path.join(args.out, "stacks"),
                            write_stacks=False)
    if hint := band_files_hint(scenes):
        print(f"rrsis predict: note: {hint}", file=sys.stderr)
    if args.merged is not None:
        check_merged_path(args.merged)
    argtypes.set_threads(args)
    info = setup_distributed(args.device)  # torchrun's process group, as rrsis train joins it
    made = not os.path.exists(args.out)
    try:  # OUT/.rrsis.lock: one run at a time (its ranks share it), taken before the model loads
        with run_lock(args.out, info.rank, info.world_size, command="rrsis predict", note=_note):
            loading(args.model, args.quiet)
            model = from_pretrained(args.model, map_location=info.device, **revision_of(args), **model_limits(args))
            if model.tokenizer is None:
                raise ValueError(no_vocabulary(args.model, "predict"))
            with warnings.catch_warnings():
                warnings.simplefilter("always", UserWarning)
                warnings.showwarning = _print_warning
                s = segment_scenes(
                    model, scenes, args.text, out=args.out, merged=args.merged, overwrite=args.overwrite,
                    progress=not args.quiet, barrier_timeout=args.barrier_timeout, mode=args.mode,
                    threshold=args.threshold, bands=args.bands, scale=args.scale, stretch=stretch,
                    probabilities=args.probabilities, geojson_crs=args.geojson_crs, simplify=args.simplify,
                    crs=args.crs, max_pixels=MAX_PIXELS if args.max_pixels is None else args.max_pixels,
                    tile=args.tile, overlap=args.overlap, pixel_ratio=args.pixel_ratio,
                    global_size=args.image_size, batch_size=args.batch_size, objects=args.objects,
                    read=args.read, aoi=args.aoi, lock_command="rrsis predict",
                )
    finally:
        cleanup_distributed(info)
        if made and info.rank == 0:  # a run refused or failed before any scene: no empty folder left
            with contextlib.suppress(OSError):
                os.rmdir(args.out)
    if info.rank != 0:
        return 0 if not s.failed else 1
    rate = f", {s.megapixels / s.seconds:.2f} Mpx/s" if s.megapixels and s.seconds else ""
    print(f"{s.total} scene(s): {len(s.done)} segmented, {len(s.skipped)} already done, {len(s.failed)} failed "
          f"({s.megapixels:.1f} Mpx in {s.seconds:.1f} s{rate})")
    if s.outside:
        print(f"{len(s.outside)} scene(s) outside the area of interest, skipped: {', '.join(sorted(s.outside))}")
    if s.merged is not None:
        of = f" from {s.total - len(s.failed)} of {s.total} scenes" if s.failed else ""
        print(f"wrote {s.merged} ({s.n_polygons} polygon(s){of})")
    if s.region is not None:
        print(f"wrote {s.region}")
    if not s.failed:
        return 0
    lacks = f"{s.merged} lacks them" if s.merged is not None else "nothing was merged"
    print(f"rrsis predict: {len(s.failed)} scene(s) failed ({', '.join(sorted(s.failed))}) and {lacks}; fix their "
          "files and run the same command again (it retries only the failed scenes and merges them in), or "
          "drop them from the list", file=sys.stderr)
    return 1
