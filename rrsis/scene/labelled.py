"""Labelled polygons placed on scenes' pixel grids: read once, placed on as many scenes as asked.

:func:`read_labels` reads a vector file's features (:func:`~rrsis.scene.vector.read_labelled_features`)
and keeps those with text and a polygon; :meth:`LabelledFeatures.place` puts them on one scene's
pixel grid, reprojected to its CRS and clipped to it. :func:`~rrsis.scene.chips.write_chips` places
one file on one scene (:func:`place_labels`); :func:`~rrsis.scene.evaluate.evaluate_scene` places one
file on many scenes, reading it once: each distinct scene CRS reprojects the features once, and a
spatial index (shapely's ``STRtree``) picks the features near each scene before any is clipped, so a
scene costs the features that touch it, not the whole file.
"""

from __future__ import annotations

from typing import Any

from .aoi import AreaOfInterest, _crs
from .ground import reaches
from .vector import need_shapely, polygonal_part, read_labelled_features

__all__ = ["LabelledFeatures", "place_labels", "read_labels"]


def _name(crs: Any) -> str:
    """``EPSG:32633``, or the name a CRS without an EPSG code has in its WKT (``site grid``)."""
    if crs.to_epsg():
        return f"EPSG:{crs.to_epsg()}"
    wkt = crs.to_wkt()
    return wkt.split('"')[1] if '"' in wkt else crs.to_string()


class LabelledFeatures:
    """A labels file's features with text and a polygon, ready to be placed on scenes.

    Memory: the file's features as read (the file is read whole, as one scene's placing always
    read it), plus, per distinct scene CRS other than the file's, one reprojected copy of them
    and a spatial index over it; nothing grows with the number of scenes.

    Attributes:
        path: the file.
        skipped: ``{"no_text": n, "no_area": n}``: the file's features left out, counted once.
        fids, texts, geometries: the kept features' ids, texts (spaces collapsed) and polygonal
            geometries in the file's CRS (made valid).
    """

    def __init__(self, path: str, fids: list, texts: list[str], geometries: list, crs: Any,
                 skipped: dict[str, int]):
        self.path, self.fids, self.texts, self.geometries = path, fids, texts, geometries
        self.crs, self.skipped = crs, skipped
        self._in: dict[str, tuple[list, Any]] = {}  # scene CRS (WKT) -> (geometries there, their STRtree)

    def _near(self, scene: Any) -> tuple[list, list[int]]:
        """The features in the scene's CRS, and the indices of those whose bounding box meets the
        scene's (one pixel wider on each side: a candidate too many costs a clip, one too few a
        wrong count)."""
        from shapely import STRtree
        from shapely.geometry import box

        key = scene.crs.to_wkt()
        if key not in self._in and self.geometries and self.crs != scene.crs \
                and not reaches(self.crs, scene.crs, *self.geometries[0].representative_point().coords[0]):
            local = "the scene's" if not reaches(scene.crs, "EPSG:4326", *(scene.transform @ (0, 0))) else "theirs"
            raise ValueError(f"{self.path}: its CRS ({_name(self.crs)}) cannot be transformed to the CRS of "
                             f"{scene.name} ({_name(scene.crs)}; {local} is a local grid or another planet's): "
                             "labels for a scene in such a CRS must be in the scene's own CRS")
        if key not in self._in:
            geoms = [AreaOfInterest(geometry=g, crs=self.crs, source=f"{self.path} feature {fid}").in_crs(scene.crs)
                     for fid, g in zip(self.fids, self.geometries, strict=True)]
            self._in[key] = (geoms, STRtree(geoms))
        geoms, tree = self._in[key]
        t = scene.transform
        corners = [t @ (c, r) for c in (0, scene.width) for r in (0, scene.height)]
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        mx, my = abs(t.a) + abs(t.b), abs(t.d) + abs(t.e)
        near = tree.query(box(min(xs) - mx, min(ys) - my, max(xs) + mx, max(ys) + my))
        return geoms, sorted(int(i) for i in near)

    def place(self, scene: Any, skipped: dict[str, int]) -> list:
        """``[(fid, text, key, pixel geometry)]`` in the file's order: the features placed on the
        scene's pixel grid (clipped to it); ``skipped`` gets the file's ``no_text`` and
        ``no_area`` and the features outside this scene (``outside``)."""
        from shapely.affinity import affine_transform
        from shapely.geometry import box

        if self.crs is None:
            raise ValueError(f"{self.path}: the file has no CRS; save it with one (the scene's is "
                             f"{scene.crs.to_string()})")
        skipped["no_text"] += self.skipped["no_text"]
        skipped["no_area"] += self.skipped["no_area"]
        geoms, near = self._near(scene)
        inv = ~scene.transform
        frame = box(0, 0, scene.width, scene.height)
        out = []
        for i in near:
            pix = polygonal_part(affine_transform(geoms[i], [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])
                                 .intersection(frame))
            if not pix.is_empty and pix.area > 0:
                out.append((self.fids[i], self.texts[i], self.texts[i].casefold(), pix))
        skipped["outside"] += len(self.fids) - len(out)
        return out


def read_labels(labels: str, text_field: str, layer: str | None) -> LabelledFeatures:
    """The features of ``labels`` with text and a polygon (invalid ones made valid), the others
    counted; a file without a CRS is refused when placed (the message names the scene's)."""
    shapely = need_shapely()

    fids, geoms, texts, crs, implied = read_labelled_features(labels, text_field, layer)
    own = crs or implied
    if own is not None:
        own = _crs(own, f"{labels}: CRS")
    skipped = {"no_text": 0, "no_area": 0}
    kept: tuple[list, list, list] = ([], [], [])
    for fid, geom, text in zip(fids, geoms, texts, strict=True):
        if not text:
            skipped["no_text"] += 1
            continue
        if geom is not None and not geom.is_empty and not geom.is_valid:
            geom = shapely.make_valid(geom)
        geom = None if geom is None else polygonal_part(geom)
        if geom is None or geom.is_empty or geom.area <= 0:
            skipped["no_area"] += 1
            continue
        for column, value in zip(kept, (fid, " ".join(text.split()), geom), strict=True):
            column.append(value)
    return LabelledFeatures(labels, *kept, own, skipped)


def place_labels(labels: str, text_field: str, layer: str | None, scene: Any, skipped: dict[str, int]) -> list:
    """``[(fid, text, key, pixel geometry)]``: the features of ``labels`` placed on the scene's
    pixel grid (clipped to it), the others counted in ``skipped``; the file read for this scene
    alone (:func:`read_labels` reads it once for many)."""
    return read_labels(labels, text_field, layer).place(scene, skipped)
