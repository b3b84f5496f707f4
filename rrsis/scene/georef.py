"""Where a scene lies: a CRS given by the user, a plain picture's world file, GCP-only rasters.

A GIS places a raster by its CRS and affine transform. Rasters carry them inside; a PNG or JPEG
carries them beside it, in a world file (``scene.pgw`` / ``scene.jgw``, or ``scene.wld``) and
GDAL's ``scene.png.aux.xml`` for the CRS. A raster georeferenced by ground control points alone
has no affine transform: :mod:`rrsis.scene.rectify` reads it through GDAL's warper, and
:func:`gcp_problem` says when its points cannot define one (too few, on one line, no CRS).
"""

from __future__ import annotations

import os
import struct
import warnings
from typing import Any

import numpy as np

__all__ = ["assign_crs", "gcp_problem", "is_georeferenced", "parse_crs", "plain_georeference", "plain_tiff", "require_geo",
           "tiff_tags", "world_file"]

# TIFF tags that make a TIFF a GeoTIFF: ModelPixelScale, ModelTiepoint, ModelTransformation,
# GeoKeyDirectory.
_GEOTIFF_TAGS = (33550, 33922, 34264, 34735)


def require_geo(what: str):
    """Import rasterio, or raise an ``ImportError`` that names the extra to install."""
    try:
        import rasterio
    except ImportError:  # pragma: no cover - exercised by simulating a missing rasterio
        raise ImportError(f"{what} needs rasterio (and shapely for polygons): pip install \"rrsis[geo]\"") from None
    return rasterio


def parse_crs(crs: Any):
    """A rasterio ``CRS`` from what a user typed (``"EPSG:32633"``, WKT, PROJ), or a
    ``ValueError`` that shows the form to give; an ``ImportError`` naming the geo extra without it."""
    try:
        from rasterio.crs import CRS
    except ImportError:
        raise ImportError(f'crs {crs!r} needs rasterio: pip install "rrsis[geo]"') from None
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(crs)
    except (CRSError, ValueError, TypeError) as exc:
        raise ValueError(f"crs {crs!r}: not a CRS ({exc}); give e.g. EPSG:32633 or a WKT string") from None


def world_file(path: str | os.PathLike) -> str | None:
    """The world file GDAL would read for the picture ``path`` (``.pgw``/``.pngw`` beside a PNG,
    ``.jgw``/``.jpgw`` beside a JPEG, then ``.wld``; lower or upper case), or ``None``."""
    root, ext = os.path.splitext(os.fspath(path))
    e = ext[1:].lower()
    if not e:
        return None
    for name in (e[0] + e[-1] + "w", e + "w", "wld"):
        for cand in (f"{root}.{name}", f"{root}.{name.upper()}"):
            if os.path.isfile(cand):
                return cand
    return None


def plain_georeference(path: str | os.PathLike) -> tuple[Any, Any]:
    """``(crs, transform)`` of a PNG/JPEG from its world file and ``.aux.xml`` (``crs`` may be
    ``None``: a world file holds no CRS); ``(None, None)`` without a world file. Without the geo
    extra a world file is ignored with a warning that names the extra (the picture still reads)."""
    found = world_file(path)
    if found is None:
        return None, None
    try:
        import rasterio
    except ImportError:
        warnings.warn(f"{found}: world file ignored (the outputs will not be georeferenced); reading it "
                      'needs rasterio: pip install "rrsis[geo]"', UserWarning, stacklevel=3)
        return None, None
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(os.fspath(path)) as ds:
            return ds.crs, ds.transform


def tiff_tags(path: str | os.PathLike) -> dict[int, object] | None:
    """The first image directory's tags of a TIFF (header only, any band count or bit depth), or
    None when ``path`` is not a TIFF."""
    from PIL import TiffImagePlugin

    try:
        with open(path, "rb") as fp:
            head = fp.read(8)
            if head[:4] not in TiffImagePlugin.PREFIXES:
                return None
            if head[2:4] in (b"+\x00", b"\x00+"):  # BigTIFF: a 16-byte header
                head += fp.read(8)
            ifd = TiffImagePlugin.ImageFileDirectory_v2(head)
            fp.seek(ifd.next)
            ifd.load(fp)
            return dict(ifd)
    except (OSError, ValueError, struct.error):
        return None


def is_georeferenced(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TIFF carrying GeoTIFF georeferencing tags."""
    tags = tiff_tags(path)
    return tags is not None and any(t in tags for t in _GEOTIFF_TAGS)


def plain_tiff(path: str) -> bool:
    """Whether the TIFF file ``path`` is read as a plain picture, as ``model.predict`` reads it
    (:func:`rrsis.data.read_image`): rasterio (the geo extra) is missing and the file carries no
    GeoTIFF georeferencing. A GeoTIFF is refused then, naming the extra: its outputs would lose
    their place on the map (as the app refuses it)."""
    if not path.lower().endswith((".tif", ".tiff")) or not os.path.isfile(path):
        return False
    try:
        import rasterio  # noqa: F401
    except ImportError:
        pass
    else:
        return False
    if is_georeferenced(path):
        raise ImportError(f'{os.path.basename(path)} is a GeoTIFF: reading it needs rasterio: pip install "rrsis[geo]" '
                          "(or save it as a PNG for outputs without georeference)")
    return True


# What to do with a GCP-only raster rrsis cannot rectify.
RECTIFY_HINT = ("rectify it first (gdalwarp -r near IN OUT, with -order N or -tps to choose GDAL's model) for "
                "a mask GeoTIFF and GeoJSON, or pass crs='none' (--crs none) for PNG outputs on the raw "
                "pixel grid without georeference")
# Singular-value ratio below which points are taken as lying on one line.
_COLLINEAR = 1e-6


def gcp_problem(dataset: Any, name: str) -> str | None:
    """Why ``dataset``, georeferenced by ground control points only (no affine transform), cannot
    be rectified (:mod:`rrsis.scene.rectify`): fewer than 3 points, all on one line in the image
    or on the ground, or no CRS; ``None`` when it can (or has a transform, or no GCPs)."""
    points, crs = dataset.gcps
    if not points or not dataset.transform.is_identity:
        return None
    n = len(points)
    why = None
    if n < 3:
        why = f"{n} ground control point(s): at least 3, not on one line, are needed"
    elif crs is None:
        why = f"{n} ground control points without a CRS"
    for where, xy in (("in the image", [(p.col, p.row) for p in points]), ("on the ground", [(p.x, p.y) for p in points])):
        a = np.asarray(xy, np.float64)
        s = np.linalg.svd(a - a.mean(axis=0), compute_uv=False)
        if why is None and (s[0] == 0 or s[-1] / s[0] < _COLLINEAR):
            why = f"its {n} ground control points lie on one line {where}"
    return None if why is None else f"{name}: georeferenced by ground control points only, and {why}; {RECTIFY_HINT}"


def assign_crs(scene: Any, crs: Any) -> None:
    """``crs=`` of :func:`~rrsis.scene.read.open_scene` on a scene that has no CRS of its own
    (``"none"``: accept outputs without georeference; ``None``: nothing given); a different CRS
    than its own is refused."""
    if crs is None:
        return
    if isinstance(crs, str) and crs.strip().lower() == "none":
        scene.crs_declined = True
        return
    given = parse_crs(crs)
    if scene.crs is not None and scene.crs != given:
        raise ValueError(f"{scene.name}: the raster has its own CRS ({scene.crs.to_string()}); crs= "
                         f"({crs!r}) only gives one to a raster that has none")
    scene.crs = given
