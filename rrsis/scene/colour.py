"""Which of a scene's objects has the colour an expression names ("the white storage tank").

The tiles of mode ``object`` see a tank and its neighbourhood, not the scene's other tanks, so
their confidence says little about which tank is the white one (README, "Whole scenes"). The
scene's pixels do: each component's mean colour is measured where it lies (its bands' sums,
:mod:`rrsis.scene.components`), and :func:`rrsis.scene.reading.choose` keeps the candidates whose
colour is nearest the one named. Nothing is learned.

Nearness is the CIELAB colour difference to the word's prototype (:data:`PROTOTYPES`, sRGB focal
colours of the basic colour terms), with lightness weighted half for a hue ("red", "blue": a
dark red roof is still red) and fully for white, gray, silver and black, which differ in lightness
only. The choice is relative, not a naming of each object: the kept ones are those within
:data:`COLOUR_MARGIN` of the nearest among the candidates, so a hazy or dim scene, where no roof
is the prototype's white, still gives its whitest roof. Colour is read on the bands the scene
declares red, green and blue, wherever they lie among the bands read (a 4-band R, G, B, NIR
model's too; :func:`rrsis.data.bands.declared_rgb`), or on three bands read, taken as R, G, B,
when none are declared; a raster declaring none, read as the model reads its training images,
takes the bands those images declared (the model's ``backbone.rgb``, :func:`recorded_rgb`); a
scene without them has no colour, and the colour is not applied.
Colours are judged on 8-bit values as they are. Other data types (16-bit reflectance read with a
value scaling is dark: 0.05 for a bright roof at ``scale="dtype"``) are taken in the source's
values (the reader's stretch undone, :func:`display_range`) and divided by a white, one value for
the three bands so that their ratios, the hue, are kept: the brightest band of the brightest
candidate (:func:`component_colours`). The scene's own brightest pixels are not the white: a
cloud, snow or a glint is brighter than any roof and would darken every colour
(``benchmarks/colour_depth.py``, its clouds rows).
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLOUR_AMONG", "COLOUR_MARGIN", "PROTOTYPES", "colour_cost", "component_colours", "display_range",
           "display_values", "recorded_rgb", "to_lab"]

COLOUR_AMONG = 8
"""How many of the surest components (at least as many as the expression names) the colour is
taken among, for an expression naming a number of objects (``benchmarks/colour_choice.py``)."""
COLOUR_MARGIN = 10.0
"""Colour difference (weighted CIELAB ΔE) to the nearest candidate within which a candidate
has the named colour too (``benchmarks/colour_choice.py``)."""

PROTOTYPES: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245), "silver": (190, 190, 195), "gray": (128, 128, 128), "black": (25, 25, 25),
    "red": (200, 30, 35), "orange": (240, 130, 20), "yellow": (240, 215, 30), "green": (40, 140, 50),
    "blue": (30, 80, 200), "brown": (120, 75, 35), "purple": (120, 45, 150), "pink": (240, 150, 185),
    "cyan": (20, 175, 200),
}
"""sRGB prototype (0–255) of each colour :data:`rrsis.scene.reading_words.COLOUR_WORDS` names."""
_ACHROMATIC = {"white", "silver", "gray", "black"}
_DISPLAY_SIDE = 512  # the longer side of display_values' decimated read


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` sRGB in [0, 1] (clipped) to CIELAB (D65 white)."""
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def colour_cost(colour: str, rgb: np.ndarray) -> np.ndarray:
    """``[n]`` how far each of ``rgb [n, 3]`` (sRGB in [0, 1]) is from the colour ``colour``
    (a key of :data:`PROTOTYPES`): the CIELAB distance, lightness weighted half for a hue;
    infinite for a colour with a value that is not finite (never the nearest)."""
    if colour not in PROTOTYPES:
        raise ValueError(f"unknown colour {colour!r}; known: {', '.join(PROTOTYPES)}")
    rgb = np.asarray(rgb, np.float64).reshape(-1, 3)
    lab = to_lab(np.nan_to_num(rgb))
    ref = to_lab(np.asarray(PROTOTYPES[colour], np.float64) / 255.0)
    w = np.array([1.0 if colour in _ACHROMATIC else 0.5, 1.0, 1.0])
    return np.where(np.isfinite(rgb).all(axis=1), np.sqrt(np.sum((w * (lab - ref)) ** 2, axis=1)), np.inf)


def recorded_rgb(scene, model) -> None:
    """A raster read in as many bands as ``model`` takes, as the model's training images were read
    (``backbone.rgb``: where they declared red, green and blue, recorded by ``rrsis train``): a
    raster declaring its colours elsewhere is read with them there (its other bands after them,
    :meth:`~rrsis.scene.read.Scene.take_colours_at`; not when ``bands=`` chose its bands), and a
    raster declaring none has its colours taken there (``scene.rgb``), so a 4-band R, G, B, NIR
    model reads a B, G, R, NIR file 3, 2, 1, 4 and "the red roof" on an undeclared file of its own
    layout. Nothing when the model records no colours; call it before reading the scene."""
    recorded = getattr(model, "colours", None)  # RRSISModel.colours: its backbone.rgb
    if recorded is None or len(scene.bands) != getattr(model, "in_chans", 3):
        return
    if getattr(scene, "declared", None) is None:
        scene.rgb = tuple(recorded)
    elif hasattr(scene, "take_colours_at"):
        scene.take_colours_at(recorded)


def display_values(scene, rgb: tuple[int, int, int]) -> np.ndarray:
    """``[n, 3]`` float64: the scene's red, green and blue (positions ``rgb`` among its bands) over
    its valid pixels, in the reader's values, on a read decimated to 512 pixels a side."""
    f = min(1.0, _DISPLAY_SIDE / max(scene.height, scene.width))
    img, valid = scene.read(None, (max(1, round(scene.height * f)), max(1, round(scene.width * f))))
    return img[valid][:, list(rgb)].astype(np.float64)


def display_range(scene, rgb: tuple[int, int, int] | None) -> np.ndarray | None:
    """``[3, 2]``: per band (positions ``rgb``), the reader's values of the source's 0 and 1, for a
    scene that is not 8-bit, so that colours are compared in the source's values, the three bands
    alike (``scene.stretch_range``: the reader's stretch or value scaling undone; none: the reader's
    values are the source's). ``None``: as they are (an 8-bit scene, a scene without colour)."""
    if rgb is None or str(scene.dtype) == "uint8":
        return None
    span = getattr(scene, "stretch_range", None)
    # One band read as grey has one range for its three equal channels.
    lo, hi = (np.zeros(3), np.ones(3)) if span is None else \
        np.array([span[min(b, len(span) - 1)] for b in rgb], np.float64).T
    return np.stack([-lo / (hi - lo), (1.0 - lo) / (hi - lo)], axis=1)


def component_colours(components) -> np.ndarray | None:
    """``[n, 3]`` each component's mean red, green and blue (``components.rgb``), or ``None`` when
    they have none (built without the scene's bands, or a scene without colour). With
    ``components.rgb_range`` set (:func:`display_range`: a scene that is not 8-bit), in the source's
    values over the white of these components, the brightest band of the brightest one: the
    candidates' colours relative to each other, whatever the scene's value range and whatever
    brighter pixels (cloud, snow, glint) lie outside them."""
    rgb = components.rgb
    if rgb is None or components.bands <= max(rgb):
        return None
    means, span = components.band_means[:, list(rgb)], components.rgb_range
    if span is None:
        return means
    source = (means - span[:, 0]) / (span[:, 1] - span[:, 0])
    white = float(source.max()) if source.size else 0.0
    return np.clip(source / white if white > 0 else source, 0.0, 1.0)
