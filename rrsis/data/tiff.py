"""A small baseline-TIFF reader for what PIL cannot decode losslessly (multi-band, 16-bit RGB).

PIL opens a 16-bit three-band TIFF as 8-bit RGB, silently drops the fourth band of a 4-band
TIFF whose extra sample is not declared alpha, and cannot open five or more bands. Remote sensing
rasters are often exactly that, but usually uncompressed, so this module reads the first image
(IFD) of an uncompressed, strip-organised TIFF with numpy. Anything else is left to PIL, and
what PIL cannot decode exactly to rasterio (the ``geo`` extra) when it is installed.
"""

from __future__ import annotations

import os
import struct
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .bands import declared_rgb

__all__ = ["TiffInfo", "palette_colours", "read_tiff_info", "read_tiff_rasterio", "read_uncompressed_tiff"]

_TYPE_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 16: "Q"}
_TAGS = {
    256: "width",
    257: "height",
    258: "bits",
    259: "compression",
    262: "photometric",
    273: "strip_offsets",
    277: "samples",
    278: "rows_per_strip",
    279: "strip_byte_counts",
    284: "planar",
    322: "tile_width",
    338: "extra_samples",
    339: "sample_format",
}
_TIFF_SUFFIXES = (".tif", ".tiff")
_GDAL_METADATA = 42112  # GDAL's per-band colour interpretations and descriptions, as XML (ASCII)
_GDAL_METADATA_MAX = 16 * 2**20  # a larger tag is not read (nothing declared)
_GDAL_NODATA = 42113  # GDAL's nodata value of every band, as text ("0", "-9999", "nan"; ASCII)
_ASCII_TAGS = (_GDAL_METADATA, _GDAL_NODATA)


@dataclass
class TiffInfo:
    """What the first IFD of a TIFF says about its pixels.

    Args:
        width, height: image size.
        samples: bands per pixel.
        bits: bits per sample (the first band's; all bands must agree for the numpy reader).
        sample_format: 1 unsigned int, 2 signed int, 3 float.
        compression: 1 = none.
        photometric: 0 white-is-zero, 1 black-is-zero, 2 RGB, 3 palette, ...
        planar: 1 = bands interleaved per pixel, 2 = one plane per band.
        tiled: the image is stored in tiles, not strips.
        colours, descriptions: per band, the colour interpretation and description the file
            declares (GDAL's names, lower case: ``"red"``, ``"alpha"``, ``"undefined"`` ...;
            ``None``: nothing declared): from GDAL's sidecar ``PATH.aux.xml`` first, then its
            metadata tag 42112, else the
            photometric interpretation (RGB: bands 1-3 red, green, blue; black- or white-is-zero:
            band 1 gray) and ExtraSamples (alpha). Empty when not given (``alpha_last`` then
            reads ExtraSamples alone).
        nodata: the nodata value the file declares for its bands (GDAL's tag 42113, overridden by
            band 1's ``NoDataValue`` in the sidecar ``PATH.aux.xml``, as GDAL reads them; GDAL
            gives a TIFF's bands one value), or ``None``: nothing declared, or text that is not a
            number (never an error).
    """

    width: int
    height: int
    samples: int
    bits: int
    sample_format: int
    compression: int
    photometric: int
    planar: int
    tiled: bool
    byteorder: str
    strip_offsets: tuple[int, ...]
    strip_byte_counts: tuple[int, ...]
    rows_per_strip: int
    all_bits: tuple[int, ...]
    extra_samples: tuple[int, ...] = ()
    colours: tuple[str | None, ...] = ()
    descriptions: tuple[str | None, ...] = ()
    nodata: float | None = None

    @property
    def alpha_last(self) -> bool:
        """Whether the last band is declared alpha (ExtraSamples 1 or 2, or GDAL's colour
        interpretation ``Alpha``), not a spectral band."""
        if self.colours and self.colours[-1] is not None:
            return self.colours[-1] == "alpha"
        return bool(self.extra_samples) and self.extra_samples[-1] in (1, 2)

    @property
    def rgb(self) -> tuple[int, int, int] | None:
        """The bands (counted from 1) the file declares red, green and blue
        (:func:`~rrsis.data.bands.declared_rgb` of :attr:`colours` and :attr:`descriptions`), or
        ``None``; always ``None`` for a palette TIFF (its colours come from the colour table)."""
        return None if self.photometric == 3 else declared_rgb(self.colours, self.descriptions)

    @property
    def numpy_readable(self) -> bool:
        """Whether :func:`read_uncompressed_tiff` can decode this image."""
        return (
            self.compression == 1
            and not self.tiled
            and self.photometric in (1, 2)
            and self.bits in (8, 16, 32, 64)
            and len(set(self.all_bits)) == 1
            and self.sample_format in (1, 2, 3)
            and not (self.sample_format == 3 and self.bits < 32)
        )


def read_tiff_info(path: str) -> TiffInfo | None:
    """Parse the first IFD of a classic TIFF; ``None`` if the file is not one.

    Args:
        path: the file.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return None
        bo = "<" if head[:2] == b"II" else ">"
        magic, ifd = struct.unpack(bo + "HI", head[2:8])
        if magic != 42:  # 43 is BigTIFF, left to PIL
            return None
        f.seek(ifd)
        raw = f.read(2)
        if len(raw) < 2:
            raise ValueError(f"{path}: truncated TIFF header")
        (n,) = struct.unpack(bo + "H", raw)
        entries = f.read(12 * n)
        if len(entries) < 12 * n:
            raise ValueError(f"{path}: truncated TIFF directory")
        tags: dict[str, tuple] = {}
        text = {_GDAL_METADATA: b"", _GDAL_NODATA: b""}
        for i in range(n):
            tag, typ, count = struct.unpack(bo + "HHI", entries[12 * i : 12 * i + 8])
            if tag in _ASCII_TAGS and typ == 2 and count <= _GDAL_METADATA_MAX:
                text[tag] = entries[12 * i + 8 : 12 * i + 8 + count]
                if count > 4:
                    f.seek(struct.unpack(bo + "I", entries[12 * i + 8 : 12 * i + 12])[0])
                    text[tag] = f.read(count)  # short when truncated: then malformed, nothing declared
                continue
            if tag not in _TAGS or typ not in _TYPE_FORMATS:
                continue
            fmt = _TYPE_FORMATS[typ]
            size = struct.calcsize(fmt) * count
            payload = entries[12 * i + 8 : 12 * i + 12]
            if size > 4:
                (offset,) = struct.unpack(bo + "I", payload)
                f.seek(offset)
                payload = f.read(size)
                if len(payload) < size:
                    raise ValueError(f"{path}: truncated TIFF tag {tag}")
            tags[_TAGS[tag]] = struct.unpack(bo + fmt * count, payload[:size])
    if "width" not in tags or "height" not in tags:
        raise ValueError(f"{path}: TIFF without image width/height")
    height = int(tags["height"][0])
    bits = tuple(int(b) for b in tags.get("bits", (1,)))
    samples = int(tags.get("samples", (1,))[0])
    photometric = int(tags.get("photometric", (1,))[0])
    extra_samples = tuple(int(v) for v in tags.get("extra_samples", ()))
    declared = _declared(samples, photometric, extra_samples, text[_GDAL_METADATA])
    colours, descriptions, nodata = _pam_declared(path, *declared, _parse_nodata(text[_GDAL_NODATA]))
    return TiffInfo(
        width=int(tags["width"][0]),
        height=height,
        samples=samples,
        bits=bits[0],
        sample_format=int(tags.get("sample_format", (1,))[0]),
        compression=int(tags.get("compression", (1,))[0]),
        photometric=photometric,
        planar=int(tags.get("planar", (1,))[0]),
        tiled="tile_width" in tags,
        byteorder=bo,
        strip_offsets=tuple(int(v) for v in tags.get("strip_offsets", ())),
        strip_byte_counts=tuple(int(v) for v in tags.get("strip_byte_counts", ())),
        rows_per_strip=int(tags.get("rows_per_strip", (height,))[0]),
        all_bits=bits,
        extra_samples=extra_samples,
        colours=colours,
        descriptions=descriptions,
        nodata=nodata,
    )


def _tiff_header(path: str) -> TiffInfo | None:
    """The TIFF header rrsis reads itself (``None`` for other files, or a TIFF it leaves to PIL);
    a missing file or an unreadable header is an error naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    if not path.lower().endswith(_TIFF_SUFFIXES):
        return None
    try:
        return read_tiff_info(path)
    except (OSError, ValueError, struct.error) as exc:
        raise ValueError(f"{path}: cannot read TIFF header ({exc})") from exc


def _parse_nodata(text: bytes | str | None) -> float | None:
    """A nodata value as GDAL writes it (tag 42113, a sidecar's ``NoDataValue``: ``"0"``,
    ``"-9999"``, ``"nan"``) → a float; ``None`` for no text or text that is not a number."""
    if isinstance(text, bytes):
        text = text.rstrip(b"\0").decode("ascii", errors="replace")
    try:
        return float(text.strip()) if text and text.strip() else None
    except ValueError:
        return None


def _pam_declared(path: str, colours: tuple[str | None, ...], descriptions: tuple[str | None, ...],
                  nodata: float | None = None
                  ) -> tuple[tuple[str | None, ...], tuple[str | None, ...], float | None]:
    """``colours``, ``descriptions`` and ``nodata`` with what GDAL's sidecar ``PATH.aux.xml`` (its
    PAM file) declares instead (per band; nodata: band 1's), as GDAL reads it over the file's
    own; unreadable: nothing."""
    side = path + ".aux.xml"
    if not os.path.isfile(side) or os.path.getsize(side) > _GDAL_METADATA_MAX:
        return colours, descriptions, nodata
    try:
        with open(side, "rb") as fh:
            text = fh.read().decode("utf-8", errors="replace")
        bands = [] if "<!DOCTYPE" in text else ET.fromstring(text).iter("PAMRasterBand")
    except (OSError, ET.ParseError, ValueError):
        return colours, descriptions, nodata
    colours, descriptions = list(colours), list(descriptions)
    for b in bands:
        number = b.get("band") or ""
        k = int(number) - 1 if number.isascii() and number.isdigit() else -1
        if not 0 <= k < len(colours):
            continue
        if (c := (b.findtext("ColorInterp") or "").strip().lower()):
            colours[k] = c
        if (d := (b.findtext("Description") or "").strip()):
            descriptions[k] = d
        if k == 0 and (v := _parse_nodata(b.findtext("NoDataValue"))) is not None:
            nodata = v
    return tuple(colours), tuple(descriptions), nodata


def _declared(samples: int, photometric: int, extra_samples: tuple[int, ...],
              metadata: bytes) -> tuple[tuple[str | None, ...], tuple[str | None, ...]]:
    """Per band: the colour interpretation and description a TIFF declares, as GDAL reads them
    (see :class:`TiffInfo`). A malformed tag 42112 declares nothing; it is never an error."""
    colours: list[str | None] = [None] * samples
    descriptions: list[str | None] = [None] * samples
    if photometric == 2:
        colours[:3] = ["red", "green", "blue"][: len(colours[:3])]
    elif photometric in (0, 1) and samples:
        colours[0] = "gray"
    for k, extra in enumerate(extra_samples):
        band = samples - len(extra_samples) + k
        if extra in (1, 2) and 0 <= band < samples:
            colours[band] = "alpha"
    text = metadata.rstrip(b"\0").decode("utf-8", errors="replace")
    if text.strip() and "<!DOCTYPE" not in text:  # entity declarations: GDAL writes none, not read
        try:
            items = ET.fromstring(text).iter("Item")
        except (ET.ParseError, ValueError):
            items = iter(())
        for item in items:
            role, sample = (item.get("role") or "").lower(), item.get("sample") or ""
            band = int(sample) if sample.isascii() and sample.isdigit() else samples
            if role not in ("colorinterp", "description") or band >= samples:
                continue
            value = (item.text or "").strip()
            if role == "colorinterp":
                colours[band] = value.lower() or None
            else:
                descriptions[band] = value or None
    return tuple(colours), tuple(descriptions)


def read_uncompressed_tiff(path: str, info: TiffInfo | None = None) -> np.ndarray:
    """Read an uncompressed strip TIFF into an array ``[H, W, C]`` of its own dtype.

    Args:
        path: the file.
        info: its parsed header, when already at hand.
    """
    info = info or read_tiff_info(path)
    if info is None or not info.numpy_readable:
        raise ValueError(f"{path}: not an uncompressed strip TIFF this reader supports")
    kind = {1: "u", 2: "i", 3: "f"}[info.sample_format]
    dtype = np.dtype(f"{info.byteorder}{kind}{info.bits // 8}")
    with open(path, "rb") as f:
        chunks = []
        for offset, count in zip(info.strip_offsets, info.strip_byte_counts):
            f.seek(offset)
            chunk = f.read(count)
            if len(chunk) < count:
                raise ValueError(f"{path}: truncated TIFF strip data")
            chunks.append(chunk)
    data = np.frombuffer(b"".join(chunks), dtype=dtype)
    h, w, c = info.height, info.width, info.samples
    if data.size < h * w * c:
        raise ValueError(f"{path}: TIFF strips hold {data.size} samples, expected {h * w * c}")
    if info.planar == 2:
        # Each band is stored as its own run of strips, padded to whole strips.
        per_band = data.size // c
        arr = data.reshape(c, per_band)[:, : h * w].reshape(c, h, w).transpose(1, 2, 0)
    else:
        arr = data[: h * w * c].reshape(h, w, c)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def palette_colours(colormap: dict[int, tuple[int, ...]], dtype: np.dtype) -> np.ndarray:
    """A colour table (rasterio's ``colormap``: index → RGBA) as a lookup array ``[N, 4]`` uint8
    covering every index of ``dtype`` (indices the table lacks: opaque black)."""
    lut = np.zeros((np.iinfo(dtype).max + 1, 4), np.uint8)
    lut[:, 3] = 255
    for k, v in colormap.items():
        if 0 <= k < len(lut):
            lut[k] = v
    return lut


def read_tiff_rasterio(path: str, info: TiffInfo, why: str, palette_to_rgb: bool = True) -> np.ndarray:
    """All bands ``[H, W, C]`` of a TIFF that neither the numpy reader nor PIL reads exactly (a
    deflate or LZW 16-bit or multi-band raster), through rasterio when the ``geo`` extra is
    installed. A paletted TIFF is its colour table's R, G, B (its alpha dropped, as
    :func:`rrsis.data.read_image` drops an alpha band), unless ``palette_to_rgb`` is false.

    Args:
        path: the file.
        info: its header.
        why: what the other readers made of it, for the messages.
        palette_to_rgb: expand a colour table (images); false keeps the indices (masks).

    Raises:
        ValueError: rasterio is missing (naming the extra) or cannot read the file either, or
            the image is over PIL's decompression-bomb limit.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit and info.width * info.height > 2 * limit:  # PIL's refusal holds for this reader too
        raise ValueError(f"{path}: {why}; refused as a possible decompression bomb ({info.width}x"
                         f"{info.height} pixels); raise PIL.Image.MAX_IMAGE_PIXELS if the file is trusted")
    try:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning
    except ImportError:
        raise ValueError(f'{path}: {why}; rasterio reads it: pip install "rrsis[geo]" (or save the '
                         "TIFF uncompressed)") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a plain TIFF has no CRS
            with rasterio.open(path) as src:
                arr = np.moveaxis(src.read(), 0, 2)
                if palette_to_rgb and info.photometric == 3 and src.count == 1:
                    arr = palette_colours(src.colormap(1), arr.dtype)[arr[:, :, 0], :3]
    except rasterio.errors.RasterioError as exc:
        raise ValueError(f"{path}: {why}, and rasterio cannot read it either ({exc})") from None
    if arr.shape[:2] != (info.height, info.width):
        raise ValueError(f"{path}: rasterio reads {arr.shape[0]}x{arr.shape[1]} pixels but the header "
                         f"says {info.height}x{info.width}")
    return arr
