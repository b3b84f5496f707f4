"""Names GDAL reads that are no file on disk, and the stem outputs take from a raster's name.

Besides files, GDAL reads URLs (``https://``, ``s3://``), virtual paths (``/vsicurl/``,
``/vsizip/``, ``/vsigzip/``) and the subdatasets of a container (a GeoPackage's raster tables,
a netCDF or HDF file's variables), named ``DRIVER:file:name`` (``GPKG:/data/two.gpkg:second``,
``NETCDF:"/data/f.nc":var``). ``os.path.isfile`` finds none of them: GDAL says what fails.
"""

from __future__ import annotations

import os
import re

__all__ = ["is_gdal_url", "is_subdataset", "name_stem"]

# A driver prefix: two characters at least (``C:\`` is a Windows drive), then ``:`` (not ``://``).
_SUBDATASET = re.compile(r"[A-Za-z][A-Za-z0-9_]+:(?!//)")
_COMPRESSED = (".gz",)  # read through /vsigzip/: the raster's own suffix comes before


def is_subdataset(text: str) -> bool:
    """A GDAL subdataset name (``GPKG:/data/two.gpkg:second``), not an existing file's path."""
    return bool(_SUBDATASET.match(text)) and not os.path.exists(text)


def is_gdal_url(text: str) -> bool:
    """A URL (``https://``, ``s3://``, ...), a GDAL virtual path (``/vsicurl/...``) or a GDAL
    subdataset name: a name GDAL resolves, not a local file's path."""
    return "://" in text or text.startswith("/vsi") or is_subdataset(text)


def _file_stem(path: str) -> str:
    base = os.path.basename((path.split("?", 1)[0] if "://" in path else path).rstrip("/" + os.sep))
    stem, ext = os.path.splitext(base)
    return os.path.splitext(stem)[0] if ext.lower() in _COMPRESSED else stem


def name_stem(name: str) -> str:
    """The stem a raster's outputs take from its name: its file name without the extension
    (``area`` for ``/vsigzip/data/area.tif.gz``, a compression suffix with the raster's); for a
    subdataset, its file's stem and its own name (``two_second`` for ``GPKG:/data/two.gpkg:second``,
    ``f_var`` for ``NETCDF:"/data/f.nc":var``)."""
    if not is_subdataset(name):
        return _file_stem(name)
    parts = [p for p in re.split(r'[:"]+', name.split(":", 1)[1]) if p.strip("/" + os.sep)]
    return "_".join(s for s in map(_file_stem, parts) if s)
