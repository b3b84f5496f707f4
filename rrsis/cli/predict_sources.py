"""``rrsis predict``'s scenes made of several files: ``--mosaic`` (tiles side by side, one area)
and ``--stack`` (one file per band, one scene), each read through a VRT written beside the outputs
before the model is loaded; and the checks made before torch is imported (:func:`check_early`)."""

from __future__ import annotations

import argparse
import os

from .._paths import file_error
from .model_ref import check_model_ref
from .text_files import expand_texts


def is_region(images: list[str]) -> bool:
    """Whether ``--image`` names several files: several values, a list file, STAC JSON or a glob.
    One URL is one image, a signed one's ``?`` included."""
    from ..scene.region import is_gdal_url

    one = images[0]
    if len(images) == 1 and is_gdal_url(one):
        return False
    listed = one.startswith("@") or one.lower().endswith((".txt", ".json"))
    return len(images) > 1 or listed or (not os.path.exists(one) and any(c in one for c in "*?["))


def _vrt(args: argparse.Namespace, flag: str, joins: str) -> str:
    """The VRT ``OUT_PREFIX_{flag}.vrt``, checked: several ``--image`` values, no region-only flag,
    no existing file without ``--overwrite``."""
    from pathlib import Path

    from ..scene import check_outputs
    from ..scene.outputs import RESUME

    if not is_region(args.image):
        raise ValueError(f"--{flag} joins several {joins}: give several --image values, a quoted glob "
                         "or a list file")
    for name in ("merged", "barrier_timeout"):
        if getattr(args, name) is not None:
            raise ValueError(f"--{name.replace('_', '-')} applies to a region of separate scenes, not to "
                             f"--{flag} (one scene)")
    vrt = Path(f"{args.out}_{flag}.vrt")
    check_outputs([str(vrt)], args.overwrite or args.resume, resume=RESUME)
    vrt.parent.mkdir(parents=True, exist_ok=True)
    return str(vrt)


def _kept(args: argparse.Namespace, vrt: str, old: bytes | None) -> None:
    """``--resume`` keeps the outputs of the run that built ``vrt``: a VRT built now from other files
    (or another order) is refused, and the old one put back, so the kept outputs still match it."""
    from .._atomic import atomic_write

    if not args.resume or old is None:
        return
    with open(vrt, "rb") as fh:
        if fh.read() == old:
            return
    atomic_write(vrt, old)
    raise ValueError(f"{vrt}: --resume keeps the outputs made from it, but these --image files (or their order, "
                     "or --stack-colours / --asset / --mosaic-crs) build another one; give the same as before, "
                     "or pass --overwrite to redo every expression (the VRT is as it was)")


def _existing(vrt: str) -> bytes | None:
    try:
        with open(vrt, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def build_mosaic(args: argparse.Namespace) -> str:
    """``--mosaic``: the tiles of ``--image`` as one scene, ``OUT_PREFIX_mosaic.vrt``."""
    from ..scene.mosaic import build_vrt

    vrt = _vrt(args, "mosaic", "scenes")
    old = _existing(vrt)
    build_vrt(args.image, vrt, asset=args.asset, crs=args.mosaic_crs)
    _kept(args, vrt, old)
    print(f"wrote {vrt}")
    return vrt


def build_stack(args: argparse.Namespace) -> str:
    """``--stack``: the band files of ``--image``, in order, as one scene, ``OUT_PREFIX_stack.vrt``
    (``--stack-colours``: each band's colour interpretation)."""
    from ..scene.stack import build_stack as stack

    if args.mosaic:
        raise ValueError("--stack reads band files of one scene, --mosaic tiles of one area: give one of them")
    if args.asset is not None:
        raise ValueError("--asset chooses a STAC asset of a region or --mosaic, not of --stack (give the "
                         "band files, in order)")
    vrt = _vrt(args, "stack", "band files of one scene")
    colours = None if args.stack_colours is None else args.stack_colours.replace(" ", "").split(",")
    old = _existing(vrt)
    stack(args.image, vrt, colours=colours)
    _kept(args, vrt, old)
    print(f"wrote {vrt}: {stack_bands(vrt)}")
    return vrt


def stack_bands(vrt: str) -> str:
    """The stack's bands in words, and what a model reads of them, printed before the model loads:
    an RGB model without recorded band names reads the declared red, green and blue, else the first
    three (a glob's files come sorted by name: B02, B03, B04 is blue first); a model recording its
    bands' names (``backbone.band_names``) finds them by name."""
    import rasterio

    from ..data.bands import declared_rgb

    with rasterio.open(vrt) as ds:
        names, colours = [d or "?" for d in ds.descriptions], [c.name for c in ds.colorinterp]
    listed = ", ".join(f"{i} {n}" + (f" ({c})" if c not in ("undefined", "gray") else "")
                       for i, (n, c) in enumerate(zip(names, colours), 1))
    named = "; a model that records its bands' names (backbone.band_names) reads them by name, in its own order"
    rgb, plain = declared_rgb(colours, names), "an RGB model without recorded band names"
    if rgb is not None:
        return f"bands {listed}; {plain} reads {', '.join(names[b - 1] for b in rgb)} as red, green, blue{named}"
    if len(names) < 3:  # as the scene reads it (rrsis.data.bands.first_three_note): band 1 as grey
        rest = "" if len(names) == 1 else f", {names[1]} as its transparency" if colours[1] == "alpha" else \
            f", {names[1]} not at all (a model built with in_chans=2 reads both)"
        return f"bands {listed}; {plain} reads {names[0]} as grey{rest}{named}"
    example = ",".join((["red", "green", "blue"] + ["undefined"] * len(names))[:len(names)])
    return (f"bands {listed}; none declared red, green or blue, so {plain} reads the first three as red, green, "
            f"blue in this order (give the files in R, G, B order, or each band's colour in the stack's order, "
            f"e.g. --stack-colours {example}){named}")


def band_files_hint(scenes, most: int = 32) -> str | None:
    """A region of one-band files over one area (each a scene of its own) is most likely one
    scene's band files (``B04.jp2``, ``B03.jp2``, ...): the note that says so and names --stack;
    ``None`` otherwise, or for more than ``most`` files (their headers are read). A region needs
    the geo extra (its merged file, its GeoTIFFs): without rasterio, the error that names it."""
    import warnings

    from ..scene.read import require_geo

    rasterio = require_geo("a region (several --image files)")
    from rasterio.errors import NotGeoreferencedWarning

    if not 2 <= len(scenes) <= most:
        return None
    seen = set()
    for s in scenes:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain pictures: no note, and no warning
                with rasterio.open(s.uri) as ds:
                    if ds.count != 1 or ds.crs is None:
                        return None
                    seen.add((ds.crs.to_string(), tuple(round(v, 6) for v in ds.bounds)))
        except rasterio.errors.RasterioIOError:
            return None
    if len(seen) != 1:
        return None
    return (f"the {len(scenes)} scenes are one-band files over one area, each segmented on its own; "
            "if they are one scene's bands, --stack reads them as one (in the order given)")


def check_early(args: argparse.Namespace) -> None:
    """What needs neither torch nor the model stack, checked before they are imported: flags given
    without the one they belong to, one image that is not there, its outputs there, then ``--model``
    (with --stack and --mosaic once their files are read, in run)."""
    from .._lock import remove_stale_lock
    from ..scene.outputs import RESUME, check_outputs, output_paths, output_prefixes
    from ..scene.region.entries import is_gdal_url

    args.text = expand_texts(args.text)  # @FILE: its expressions
    if args.aoi_crs is not None and args.aoi is None:
        raise ValueError("--aoi-crs is the CRS of --aoi; give --aoi too")
    if args.mosaic_crs is not None and not args.mosaic:
        raise ValueError("--mosaic-crs is the CRS of --mosaic's grid; give --mosaic too")
    if args.stack_colours is not None and not args.stack:
        raise ValueError("--stack-colours declares the colours of --stack's bands; give --stack too")
    if args.stack or args.mosaic:  # build_stack / build_mosaic check theirs
        return
    if is_region(args.image):
        if args.resume:
            raise ValueError("--resume applies to one scene; a region resumes without it: rerun the same command")
        check_model_ref(args.model, "predict", args.revision)
        return
    if args.resume and args.overwrite:
        raise ValueError("--resume keeps the files done before, --overwrite replaces them: give one of them")
    for flag in ("asset", "merged", "barrier_timeout"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag.replace('_', '-')} applies to a region (several --image values, a "
                             "glob, a list file or STAC JSON), not to one image")
    image = args.image[0]
    if not is_gdal_url(image):  # a URL: GDAL names what fails
        if error := file_error(image, f"--image {image}"):
            raise error
        # The overlay is an output of a georeferenced scene and of a plain one alike (which this one
        # is is known once it is opened, and all its outputs are checked then). A refusal names
        # every file of either kind there; a killed run's temporaries and lock are removed first.
        prefixes = output_prefixes(args.out, len(args.text), image)
        overlays = [output_paths(pre, False)["overlay"] for pre in prefixes]
        every = list(dict.fromkeys(p for pre in prefixes for geo in (True, False) for p in output_paths(pre, geo).values()))
        refused = not (args.overwrite or args.resume) and any(os.path.lexists(p) for p in overlays)
        if refused:
            remove_stale_lock(output_prefixes(args.out, 1, image)[0], folder=False)
        check_outputs(every if refused else overlays, args.overwrite or args.resume, resume=RESUME)
    check_model_ref(args.model, "predict", args.revision)
