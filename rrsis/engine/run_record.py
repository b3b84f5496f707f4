"""What the model folders of ``rrsis train`` (``best/``, ``final/``) say about their run in the
model card: where their metrics were measured (:func:`evaluation_record`) and the recipe that
trained them (:func:`training_record`), so that a folder shared alone still says how it was made.
Only what the run recorded is said; the run folder's ``config.json`` holds the rest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .._version import __version__

__all__ = ["evaluation_record", "init_text", "training_record", "weights_sha256"]


def weights_sha256(init: Any) -> tuple[str, str] | None:
    """``(file name, sha256)`` of the weight file the local model folder ``init`` holds (the one
    ``from_pretrained`` reads first: ``model.safetensors``, an index, or ``pytorch_model.bin``),
    or of ``init`` itself when it is a file; ``None`` for a Hub repo id or a folder without one."""
    from ..hub.weights import WEIGHT_NAMES

    path = Path(os.path.expanduser(os.fspath(init)))
    files = [path] if path.is_file() else [path / n for n in WEIGHT_NAMES] if path.is_dir() else []
    for file in files:
        if file.is_file():
            h = hashlib.sha256()
            with open(file, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            return file.name, h.hexdigest()
    return None


def init_text(model_cfg: dict[str, Any], sha: tuple[str, str] | None) -> str:
    """The card's "initial weights": ``model.init`` (a local folder as an absolute path with its
    weights' sha256, or a Hub repo id and revision), or what the model was built with."""
    init = model_cfg.get("init")
    if init:
        path = os.path.expanduser(os.fspath(init))
        if os.path.exists(path):
            return f"`{os.path.abspath(path)}` (`model.init`)" + (f", `{sha[0]}` sha256 `{sha[1]}`" if sha else "")
        rev = model_cfg.get("revision")
        return f"the Hub repo `{init}`" + (f" at revision `{rev}`" if rev else "") + " (`model.init`)"
    name = f"`{model_cfg.get('name')}`"
    if not model_cfg.get("pretrained"):
        return f"{name}, randomly initialised (`model.pretrained` false)"
    parts = [f"`{k}` {model_cfg[k]}" for k in ("swin_weights", "text_weights") if model_cfg.get(k)]
    return f"{name} with its pretrained part weights (`model.pretrained`{': ' + ', '.join(parts) if parts else ''})"


def training_record(cfg: dict[str, Any], *, arch: str, init: str, data_built: bool, world_size: int,
                    steps_per_epoch: int, total_steps: int, epochs: int, config_path: Path) -> dict[str, str]:
    """``label → markdown`` for the card's "Training" section: the recipe values a reader needs
    to train the model again, each named by its recipe key.

    Args:
        cfg: the run's recipe (defaults filled).
        arch: the trained model's architecture.
        init: :func:`init_text`, or what the trainer was given instead.
        data_built: whether the trainer built the datasets from ``data`` (not given in Python).
        world_size, steps_per_epoch, total_steps, epochs: the trainer's.
        config_path: the run folder's ``config.json``.
    """
    data, oc, tc = cfg["data"], cfg["optim"], cfg["train"]
    out: dict[str, str] = {}
    if cfg.get("recipe"):
        out["recipe"] = f"`{cfg['recipe']}`"
    out["architecture"] = f"`{arch}`"
    out["initial weights"] = init
    if data_built and data.get("root"):
        val = data.get("val_split")
        out["data"] = (f"{data.get('dataset')} at `{os.path.abspath(os.path.expanduser(str(data['root'])))}` "
                       f"(`data.root`): trained on its `{data.get('train_split')}` split, "
                       + (f"validated on `{val}`" if val else "no validation"))
    else:
        out["data"] = "datasets given to the `Trainer` in Python (not read from `data.root`)"
    out["image size"] = f"{data.get('image_size')} (`data.image_size`)"
    opt = f"AdamW, lr {oc['lr']:g}"
    if oc.get("text_lr") is not None:
        opt += f" (text encoder {float(oc['text_lr']):g})"
    opt += f", weight decay {oc['weight_decay']:g}, poly decay power {oc['poly_power']:g}"
    if oc.get("warmup_steps"):
        opt += f" after {oc['warmup_steps']} warm-up steps"
    out["optimiser"] = opt + " (`optim`)"
    how = (f"`train.max_steps` {tc['max_steps']}" if tc.get("max_steps")
           else f"`train.epochs` {epochs}") + f"; {steps_per_epoch} steps per epoch"
    out["steps"] = f"{total_steps} ({how})"
    accum = max(1, int(tc.get("grad_accum_steps") or 1))
    batch = int(tc["batch_size"])
    out["batch size"] = f"{batch * world_size * accum} per step" + (
        f" ({batch} per process (`train.batch_size`) × {world_size} process(es) × {accum} accumulated"
        " (`train.grad_accum_steps`))" if world_size * accum > 1 else " (`train.batch_size`)")
    out["seed"] = f"{tc['seed']} (`train.seed`)"
    out["rrsis"] = __version__
    out["full recipe"] = f"`{config_path}`, the run folder's `config.json` (not in this model folder)"
    return out


def evaluation_record(cfg: dict[str, Any], *, step: int, total_steps: int, data_built: bool,
                      chosen_by: str | None = None) -> dict[str, Any]:
    """Where a validation's metrics were measured (:data:`rrsis.hub.card.EVALUATION_KEYS`): the
    step of ``total_steps``, ``data.val_split`` and ``data.image_size`` (validation resizes images and
    masks to it) when the trainer read the data, and, for ``best/``, the metric that chose it."""
    data = cfg["data"]
    out: dict[str, Any] = {"step": step, "total_steps": total_steps}
    if data_built:  # a validation set given in Python has its own split and size
        out.update({"split": data.get("val_split"), "image_size": data.get("image_size")})
    if chosen_by:
        out["chosen_by"] = chosen_by
    return out
