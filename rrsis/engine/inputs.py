"""The data side of a recipe: its datasets and its tokenizer."""

from __future__ import annotations

import copy
import inspect
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from .._config import ConfigError
from ..data import DATASETS, measure_statistics
from ..data.base import dataset_options
from ..data.headers import option_problem, read_header
from ..text import Tokenizer

__all__ = ["AUTO", "build_datasets", "build_tokenizer", "check_dataset_bands", "check_init_revision",
           "model_statistics", "resolve_statistics", "statistics_needed", "text_words"]

logger = logging.getLogger(__name__)

AUTO = "auto"  # model.mean / model.std: measured on the training split


def text_words(texts) -> list[str]:
    """The words of ``texts`` as the rrsis tokenizer splits them (BERT-uncased normalisation,
    punctuation split off), in first-seen order."""
    from tokenizers import normalizers, pre_tokenizers

    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                      lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    seen: dict[str, None] = {}
    for t in texts:
        for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)):
            seen.setdefault(w, None)
    return list(seen)


def build_tokenizer(spec: Any, model: nn.Module | None, train_dataset: Dataset | None,
                    max_tokens: int | None = None):
    """The tokenizer of a run (see ``data.tokenizer`` in :mod:`rrsis.engine.recipe`).

    Args:
        spec: ``None`` (the model's own tokenizer, else a whole-word vocabulary of the
            training expressions), a ``vocab.txt`` path or a directory holding one.
        model: the model (its ``tokenizer`` attribute).
        train_dataset: an rrsis dataset whose ``entries`` hold the training sentences.
        max_tokens: tokenizer length; ``None``: the model's ``text.max_tokens`` (the one
            setting of it), else the saved tokenizer's or :data:`~rrsis.text.MAX_TOKENS`.
    """
    if max_tokens is None and model is not None:
        max_tokens = (getattr(model, "config", None) or {}).get("text", {}).get("max_tokens")
    if spec:
        path = Path(spec)
        if path.is_dir():
            return Tokenizer.from_pretrained(path, max_tokens=max_tokens)
        return Tokenizer(path, **({} if max_tokens is None else {"max_tokens": max_tokens}))
    if model is not None and getattr(model, "tokenizer", None) is not None:
        return model.tokenizer
    entries = getattr(train_dataset, "entries", None)
    if not entries:
        raise ValueError(
            "no tokenizer: the model has none and the training set exposes no sentences; set "
            "data.tokenizer to a vocab.txt or a model directory"
        )
    texts = [t for e in entries for _, t in e.sentences]
    return Tokenizer.from_words(text_words(texts), **({} if max_tokens is None else {"max_tokens": max_tokens}))


def model_statistics(model_cfg: dict[str, Any] | None, key: str = "mean") -> Any:
    """``(mean, std)`` a recipe's ``model`` section sets, read without building the model: its
    flat ``mean``/``std`` keys, its ``backbone`` node's, or those saved in a local ``init``
    directory's ``config.json``; ``None`` when it sets none (an RGB model: ImageNet's);
    ``"auto"`` when both are ``"auto"`` (measured on the training split, :func:`resolve_statistics`).
    ``key="scale"`` (or ``"in_chans"``): the value it records, found the same way (or ``None``)."""
    import json

    cfg = dict(model_cfg or {})
    nodes = [cfg, cfg.get("backbone") if isinstance(cfg.get("backbone"), dict) else {}]
    init = cfg.get("init")
    if init and os.path.isfile(os.path.join(os.fspath(init), "config.json")):
        with open(os.path.join(os.fspath(init), "config.json"), encoding="utf-8") as fh:
            args = json.load(fh).get("model_args") or {}
        nodes += [args, args.get("backbone") if isinstance(args.get("backbone"), dict) else {}]
    for node in nodes:
        if key != "mean":
            if node.get(key) is not None:
                return node[key]
            continue
        if AUTO in (node.get("mean"), node.get("std")):
            if node.get("mean") != node.get("std"):
                raise ConfigError(f"model.mean {node.get('mean')!r} / model.std {node.get('std')!r}: 'auto' "
                                  "measures both on the training split; set both to auto, or give both")
            return AUTO
        if node.get("mean") is not None and node.get("std") is not None:
            return [float(v) for v in node["mean"]], [float(v) for v in node["std"]]
    return None


def statistics_needed(in_chans: int) -> str:
    """Why a recipe's ``model.in_chans`` of another count than 3 without ``mean``/``std`` is refused,
    and the ways to give them."""
    return (f"model.in_chans={in_chans} needs per-band normalisation statistics, {in_chans} values each of "
            "model.mean and model.std, for the values as data.options.scale reads them (ImageNet's are for "
            "RGB only): --model.mean auto --model.std auto measures them on the training split (printed, "
            f"and recorded in the run's and the saved model's config.json), or give them: --model.mean "
            f"'[...]' --model.std '[...]' ({in_chans} numbers each; rrsis chips prints them for its chips)")


def resolve_statistics(model_cfg: dict[str, Any], dataset: Dataset) -> dict[str, Any]:
    """``model_cfg`` with ``"auto"`` statistics replaced by those of the training ``dataset``
    (:func:`~rrsis.data.measure_statistics`, as :func:`build_datasets` measured them), logged as
    the command-line options that give them; unchanged without ``"auto"``."""
    if model_statistics(model_cfg) != AUTO:
        return model_cfg
    mean, std = getattr(dataset, "measured_statistics", None) or measure_statistics(dataset)
    logger.info("model.mean / model.std measured on the training split (%d images, scale=%r), recorded in "
                "config.json: --model.mean '%s' --model.std '%s'", len({e.image_path for e in dataset.entries}),
                getattr(dataset, "scale", None), json.dumps(mean), json.dumps(std))
    out = copy.deepcopy(model_cfg)
    for node in (out, out.get("backbone") if isinstance(out.get("backbone"), dict) else {}):
        if node.get("mean") == AUTO:
            node["mean"], node["std"] = list(mean), list(std)
    return out


def check_dataset_bands(dataset: Dataset | None, model: nn.Module, where: str) -> None:
    """Refuse a dataset whose normalisation is not the model's: ``model.predict`` and the scene
    reader normalise with the model's statistics, so training or evaluating with others would
    score a model on pixels it never sees at inference."""
    own = getattr(model, "pixel_scale", None)
    if dataset is not None and own is not None and getattr(dataset, "scale", own) != own:
        raise ValueError(f"{where} scales values with scale={dataset.scale!r} but the model was trained on "
                         f"scale={own!r} (its backbone.scale): leave the dataset's scale unset (it follows "
                         "the model's) or pass the same")
    transform = getattr(dataset, "transform", None)
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    if mean is None or std is None or not hasattr(model, "pixel_mean"):
        return
    have = [float(v) for v in mean.flatten()], [float(v) for v in std.flatten()]
    want = [float(v) for v in model.pixel_mean], [float(v) for v in model.pixel_std]
    # Equal up to float32 (one side may be a float32 tensor, the other the config's float64).
    if any(len(h) != len(w) or not all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(h, w))
           for h, w in zip(have, want)):
        have = [round(v, 6) for v in have[0]], [round(v, 6) for v in have[1]]
        want = [round(v, 6) for v in want[0]], [round(v, 6) for v in want[1]]
        raise ValueError(
            f"{where} normalises {len(have[0])} band(s) with mean {have[0]} / std {have[1]} but the model "
            f"takes {len(want[0])} (in_chans={model.in_chans}) with mean {want[0]} / std {want[1]}: leave "
            "the dataset's mean/std unset (they follow the model's) or give the model the same"
        )


def build_datasets(data_cfg: dict[str, Any], model_cfg: dict[str, Any] | None = None
                   ) -> tuple[Dataset, Dataset | None]:
    """Training (one random expression per target each epoch) and validation (every
    expression) datasets of a recipe's ``data`` section, without tokenizer yet.

    ``model_cfg`` (the recipe's ``model`` section): its per-band statistics
    (:func:`model_statistics`) become the datasets' ``mean``/``std`` where ``data.options``
    sets none, so a 4-band model reads 4-band images with its own normalisation; ``"auto"``
    statistics are measured on the training split (:func:`~rrsis.data.measure_statistics`, kept
    as the training set's ``measured_statistics``) and given to both. A model of another band count
    than 3 without statistics is refused first (:func:`statistics_needed`), and an RGB model's
    refusal of many-band images says how to train a model of their band count."""
    root = data_cfg.get("root")
    if not root:
        raise ValueError("data.root is not set: pass --data.root PATH (or --root PATH)")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data.root {root}: folder not found")
    name = data_cfg["dataset"]
    cls = DATASETS.get(name)
    opts = dict(data_cfg.get("options") or {})
    opts["size"] = data_cfg["image_size"]
    accepts = dataset_options(name) or []  # scene-crops reads RGB only, with its own statistics
    stats = model_statistics(model_cfg) if "mean" in accepts else None
    in_chans = model_statistics(model_cfg, "in_chans")
    if "mean" in accepts and stats is None and in_chans not in (None, 3) and opts.get("mean") is None:
        raise ConfigError(statistics_needed(in_chans))
    auto = stats == AUTO
    if auto:  # stand-in statistics (0 and 1 per band read), replaced by what the training split measures
        if opts.get("mean") is not None or opts.get("std") is not None or "transform" in opts:
            raise ValueError("model.mean/std 'auto' are measured on the values the datasets read: drop "
                             "data.options.mean/std (and transform)")
        stats = [0.0] * (in_chans or 3), [1.0] * (in_chans or 3)
    if stats is not None and "transform" not in opts:
        given = [None if opts.get(k) is None else [float(v) for v in opts[k]] for k in ("mean", "std")]
        if given != [None, None] and given != list(stats):
            raise ValueError(f"data.options mean/std {given} differ from the model's {list(stats)}: the "
                             "model's statistics are what predict uses; drop data.options.mean/std")
        opts["mean"], opts["std"] = stats
    if "scale" in accepts and opts.get("scale") is None and model_statistics(model_cfg, "scale") is not None:
        opts["scale"] = model_statistics(model_cfg, "scale")  # what the model was trained on
    takes_mode = "mode" in inspect.signature(cls.__init__).parameters
    mode = {"mode": "train"} if takes_mode else {"train": True}
    try:
        train = _non_empty(cls(root, split=data_cfg["train_split"], **mode, **opts), "data.train_split",
                           data_cfg["train_split"])
    except ValueError as exc:
        if stats is not None or opts.get("bands") is not None or "mean" not in accepts:
            raise
        raise _many_bands(cls, root, data_cfg, mode, opts, exc) from exc
    if auto:
        train.measured_statistics = measure_statistics(train)
        opts["mean"], opts["std"] = train.measured_statistics
        train.transform = type(train.transform)(train.transform.size, *train.measured_statistics)
    val = None
    if data_cfg.get("val_split"):
        try:
            val = cls(root, split=data_cfg["val_split"], **({"mode": "eval"} if takes_mode else {}), **opts)
        except (FileNotFoundError, ValueError) as exc:
            # Name the recipe key: a folder without a val split is common, and null is a choice.
            raise type(exc)(f"data.val_split={data_cfg['val_split']!r} (null: train without validation): "
                            f"{exc}") from exc
        _non_empty(val, "data.val_split", data_cfg["val_split"], " (null: train without validation)")
    return train, val


def _many_bands(cls, root: str, data_cfg: dict[str, Any], mode: dict, opts: dict, exc: ValueError) -> ValueError:
    """``exc`` (the training set's refusal, for an RGB model), or, when its first image has another
    band count than an RGB model reads and would be read whole by a model of that count, what to
    set instead: the model's band count and statistics, or the bands to read."""
    try:
        first = cls(root, split=data_cfg["train_split"], **mode, **opts, check_headers=False, check_sizes=False)
        header = read_header(first.entries[0].image_path)
    except (ValueError, OSError, IndexError, TypeError):
        return exc
    n = header.bands - int(header.alpha)
    if option_problem(header, None, "minmax", None) is None or option_problem(header, None, "minmax", n):
        return exc  # read as RGB, or not read whole by a model of its count: the refusal is not the count's
    options = json.dumps({**(data_cfg.get("options") or {}), "bands": [4, 3, 2] if n >= 4 else [1]})
    return ConfigError(
        f"{header.path}: the images have {n} bands but the model reads 3 (R, G, B; model.in_chans is not "
        f"set): to train on all {n}, set --model.in_chans {n} with its statistics, --model.mean auto "
        f"--model.std auto (measured on the training split) or {n} values each; or choose the bands the "
        f"model reads, e.g. --data.options '{options}' (Sentinel-2's R, G, B; another count than 3 needs "
        "--model.in_chans and statistics too)")


def _non_empty(dataset: Dataset, key: str, split: str, hint: str = "") -> Dataset:
    """Refuse a split with no sample now, before a model is built (an empty phrase file, or
    every sample skipped as malformed), instead of failing later on what is missing."""
    if len(dataset) == 0:
        skipped = getattr(dataset, "skipped", None)
        why = f"; {len(skipped)} skipped as malformed, see the warning above" if skipped else ""
        raise ValueError(f"{key}={split!r} holds no sample{why}{hint}")
    return dataset


def check_init_revision(model_cfg: dict[str, Any]) -> dict[str, str]:
    """``revision=`` for ``from_pretrained(model.init)`` (``rrsis train --revision``), or ``{}``; a
    revision without a Hub repo id as ``init`` is refused."""
    revision, init = model_cfg.get("revision"), model_cfg.get("init")
    if revision is None:
        return {}
    if not init:
        raise ValueError(f"model.revision={revision!r} (--revision) is the Hub revision of the model to fine-tune "
                         "from: give model.init=ORG/NAME (--model.init) too")
    if os.path.exists(os.path.expanduser(os.fspath(init))):
        raise ValueError(f"model.revision={revision!r} (--revision) chooses a revision of a Hub repo, but model.init "
                         f"{init} is a local folder; leave --revision out, or give the Hub repo id as model.init")
    return {"revision": str(revision)}
