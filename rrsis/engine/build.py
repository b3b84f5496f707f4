"""The model a training recipe describes: its ``model`` section through the one builder, with what
the training data recorded (size, value scaling, declared colours, band names, training scale)."""

from __future__ import annotations

from typing import Any

from torch import nn

from .inputs import check_init_revision

__all__ = ["build_model"]

# Keys of the model section that are not architecture arguments.
_MODEL_META = ("name", "pretrained", "swin_weights", "text_weights", "init", "revision")


def build_model(model_cfg: dict[str, Any], image_size: int | None = None, scale: Any = None,
                rgb: Any = None, band_names: Any = None, training_scale: Any = None) -> nn.Module:
    """The model a recipe's ``model`` section describes, through the one builder.

    The section holds ``name`` (registry key, optionally ``arch.tag``), ``pretrained``,
    ``swin_weights``/``text_weights`` (part weights), ``init`` (a saved model directory or Hub
    id to fine-tune from) and ``revision`` (the Hub branch, tag or commit of ``init``), and config nodes or flat aliases, validated strictly as in
    :func:`rrsis.create_model`; ``null`` means "the default" there too.

    Args:
        model_cfg: the recipe's ``model`` section.
        image_size: the training size, recorded as the model's default ``predict`` size
            unless the section sets ``image_size``.
        scale: the training data's value scaling (``data.options.scale``), recorded as the
            model's ``backbone.scale`` (the default ``scale`` of ``predict`` and the scene path)
            unless the section sets one.
        rgb: the channels the training images declare red, green and blue (the dataset's
            ``rgb``), recorded as ``backbone.rgb`` unless the section sets one.
        band_names: the descriptions the training images give the channels (the dataset's
            ``band_names``), recorded as ``backbone.band_names`` unless the section sets them.
        training_scale: the training images' ``{"image_ratio", "gsd"}`` (the dataset's
            ``training_scale``, :mod:`rrsis.data.training_scale`), recorded as
            ``backbone.image_ratio`` / ``backbone.gsd`` unless the section sets them.
    """
    from ..factory import create_model, from_pretrained

    revision = check_init_revision(model_cfg)
    args = {k: v for k, v in model_cfg.items() if k not in _MODEL_META}
    if image_size is not None and args.get("image_size") is None:
        args["image_size"] = image_size
    if scale is not None and args.get("scale") is None and (args.get("backbone") or {}).get("scale") is None:
        args["scale"] = scale  # saved with the model: predict and the scene path read values as trained
    if rgb is not None and args.get("rgb") is None and (args.get("backbone") or {}).get("rgb") is None:
        args["rgb"] = list(rgb)  # the bands its images declared red, green, blue: the scene's colour step
    if band_names is not None and args.get("band_names") is None and (args.get("backbone") or {}).get("band_names") is None:
        args["band_names"] = list(band_names)  # a raster describing these bands is read with them, in this order
    for key, value in (training_scale or {}).items():  # the scale its objects were seen at: whole scenes' pixel_ratio
        if value is not None and args.get(key) is None and (args.get("backbone") or {}).get(key) is None:
            args[key] = value
    if model_cfg.get("init"):
        return from_pretrained(model_cfg["init"], **revision, **args).train()
    name = model_cfg.get("name")
    if not name:
        raise ValueError("the config's model section needs a 'name' (see `rrsis models`)")
    if not model_cfg.get("pretrained"):
        return create_model(name, **args)
    return create_model(
        name, pretrained=True, swin_weights=model_cfg.get("swin_weights"), text_weights=model_cfg.get("text_weights"),
        **args,
    )
