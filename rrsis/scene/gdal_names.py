"""Names GDAL reads that are no file on disk, and the stem outputs take from a raster's name.

Besides files, GDAL reads URLs (``https://``, ``s3://``), virtual paths (``/vsicurl/``,
``/vsizip/``, ``/vsigzip/``) and the subdatasets of a container (a GeoPackage's raster tables,
a netCDF or HDF file's variables), named ``DRIVER:file:name`` (``GPKG:/data/two.gpkg:second``,
``NETCDF:"/data/f.nc":var``). ``os.path.isfile`` finds none of them: GDAL says what fails.
"""

from __future__ import annotations

import os
import re

__all__ = ["absolute_name", "is_gdal_url", "is_subdataset", "name_stem"]

# A driver prefix: two characters at least (``C:\`` is a Windows drive), then ``:`` (not ``://``).
_SUBDATASET = re.compile(r"[A-Za-z][A-Za-z0-9_]+:(?!//)")
_COMPRESSED = (".gz",)
# The virtual paths that read a local file (the archive or compressed file named after them).
_LOCAL_VSI = re.compile(r"/vsi(?:gzip|zip|tar|7z|rar)/")  # read through /vsigzip/: the raster's own suffix comes before


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


def _absolute_file(path: str) -> str:
    return path if os.path.isabs(path) or "://" in path or path.startswith("/vsi") else os.path.abspath(path)


def absolute_name(name: str) -> str:
    """``name`` with the file it reads made absolute, as a plain file's path is: a plain path,
    the file under a local virtual path (``/vsigzip/data/area.tif.gz`` for ``/vsigzip/area.tif.gz``
    read in ``/data``) or a subdataset's file (``GPKG:/data/two.gpkg:second``); URLs and remote
    virtual paths unchanged, as is a subdataset name whose file is not found."""
    if "://" in name and not name.startswith("/vsi"):
        return name
    local = _LOCAL_VSI.match(name)
    if local:
        return local.group(0) + _absolute_file(name[local.end():])
    if name.startswith("/vsi"):
        return name
    if not is_subdataset(name):
        return os.path.abspath(name)
    driver, rest = name.split(":", 1)
    quoted = re.search(r'"([^"]+)"', rest)
    if quoted:  # NETCDF:"f.nc":var
        return f"{driver}:{rest[:quoted.start(1)]}{_absolute_file(quoted.group(1))}{rest[quoted.end(1):]}"
    parts = rest.split(":")
    for start in range(len(parts)):  # the first run of parts naming a file: GPKG:r/two.gpkg:second
        for end in range(start + 1, len(parts) + 1):
            path = ":".join(parts[start:end])
            if path and os.path.isfile(path):
                return ":".join([driver, *parts[:start], _absolute_file(path), *parts[end:]])
    return name
