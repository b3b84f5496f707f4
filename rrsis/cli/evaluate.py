"""``rrsis evaluate``: score a saved model on a dataset split (oIoU, mIoU, P@0.5–0.9), or the
whole-scene modes on a labelled scene of the user's own (``--scene``: :mod:`rrsis.cli.evaluate_scene`)."""

from __future__ import annotations

import argparse

from .argtypes import add_threads, positive_int, set_threads, unit_interval, workers
from .evaluate_scene import add_scene_arguments, check_sides, default_out, run_scene
from .model_limits import add_model_limits, model_limits
from .model_ref import add_revision, check_model_ref, loading, no_vocabulary, revision_of

# The dataset layouts --data reads (rrsis train prints an evaluate line for a run on one of them).
DATASETS = ("rrsisd", "refsegrs", "risbench", "folder")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="evaluate a saved model on a dataset split, or the whole-scene modes on your own scene",
        description="Evaluate a model directory or Hub repo on a dataset split (--data) and print oIoU, mIoU "
                    "and P@0.5-0.9. By default at the model's input size with the ground truth "
                    "resized to it (the anchors' protocol); --native-resolution compares at each "
                    "image's own size instead. Or score the whole-scene modes on your own "
                    "georeferenced scene and its labelled polygons (--scene, --labels; needs "
                    'pip install "rrsis[geo]"): mIoU, oIoU and P@0.5 per mode, beside naive tiles.',
    )
    p.add_argument("--model", required=True, help="a save_pretrained directory, a Hub repo id, or a checkpoint of "
                                                  "rrsis train (RUN/checkpoints/step-N.pt: its weights in the model "
                                                  "of RUN/best or RUN/final)")
    add_revision(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", metavar="ROOT", help="dataset folder")
    what.add_argument("--scene", nargs="+", action="extend", metavar="RASTER",
                      help="a georeferenced raster (GeoTIFF, COG, VRT) to score the whole-scene modes on, with "
                           "--labels; or several, as rrsis predict --image takes them (files, a quoted glob, "
                           "@list.txt, STAC JSON): scored one after another and pooled")
    p.add_argument("--image-size", type=positive_int,
                   help="model input side, a multiple of 32 (default: the model's image_size); with --scene, the "
                        "global pass's side, as rrsis predict's")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    add_threads(p)
    p.add_argument("--out", help="metrics JSON to write (default: eval-<dataset>-<split>.json, with --scene "
                                 "eval-scene-<scene>.json, or eval-scenes.json for several)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out metrics file (refused without it), and with --scene existing "
                        "files in --keep-predictions")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    d = p.add_argument_group("a dataset split (--data)")
    d.add_argument("--dataset", choices=DATASETS,
                   help="dataset layout (required with --data)")
    d.add_argument("--split", help="split to evaluate (default: test)")
    d.add_argument("--native-resolution", action="store_true",
                   help="compare at each image's native size (not comparable with published numbers)")
    d.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"],
                   help="autocast (auto, the default: bf16 on GPU, off on CPU)")
    d.add_argument("--num-workers", type=workers("--num-workers", low=0), help="data loader workers (default 2)")
    d.add_argument("--empty-iou", type=unit_interval, metavar="IOU",
                   help="IoU when prediction and target are both empty, in [0, 1] (0 as RMSIN, the default; 1 as "
                        "gRefCOCO)")
    d.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset constructor option, repeatable (e.g. image_dir=/data/rrsisd/JPEGImages "
                        "for the official RRSIS-D layout, mask_threshold=0 for 0/1 masks)")
    add_scene_arguments(p)
    add_model_limits(p)
    p.set_defaults(func=run, precheck=check_early)


def _check_writable(out: str, overwrite: bool) -> None:
    """Refuse an ``--out`` that cannot be written: a folder, or a folder that cannot be made or
    written into; or an existing file without ``--overwrite`` (the project's rule for outputs)."""
    import os

    from .._atomic import writable_folder

    if os.path.isdir(out):
        raise IsADirectoryError(f"--out {out}: is a folder; give the metrics file's name (e.g. {out.rstrip('/')}/eval.json)")
    if os.path.lexists(out) and not overwrite:
        raise FileExistsError(f"{out} exists (the metrics of an earlier evaluation): pass --overwrite to replace it, "
                              "or choose another --out")
    writable_folder(os.path.dirname(os.path.abspath(out)), f"choose another --out than {out}")


def _input_side(image_size: int | None, model) -> int:
    """``--image-size`` checked against the model (a multiple of its ``size_divisor``, and at least
    its smallest side), or the model's own size; refused before the dataset is read."""
    from ..data.transforms import check_image_size, smallest_input_side

    if image_size is None:
        return int(model.image_size)
    div = int(model.size_divisor)
    stride = getattr(model, "feature_stride", None)
    if image_size % div:  # the sides either side of it, none below the smallest the model runs
        low, below = smallest_input_side(div, stride), image_size // div * div
        near = " or ".join(str(v) for v in sorted({max(below, low), max(below + div, low)}))
        raise ValueError(f"--image-size {image_size}: the model takes a multiple of {div} (e.g. {near}; leave "
                         f"the flag out for the model's {model.image_size})")
    try:  # and at least the side whose last stage holds more than one position
        return check_image_size(image_size, model.image_size, div, stride, unset="leave the flag out")
    except ValueError as exc:
        raise ValueError(f"--image-size: {exc}") from None


def check_early(args: argparse.Namespace) -> None:
    """What needs neither torch nor the model stack, checked before they are imported: the flags'
    sides, the metrics file (``--out``, its default with ``--data``), and with ``--data`` the dataset
    folder and ``--model``."""
    import os

    check_sides(args)
    if args.scene is not None:
        if args.out is not None:  # its default names the scene: checked with it, in run
            _check_writable(args.out, args.overwrite)
        return  # the scene, labels and --model: checked in that order by run_scene
    # --data's defaults, applied here so that check_sides sees which flags were given.
    args.split = args.split or "test"
    args.amp = args.amp or "auto"
    args.num_workers = 2 if args.num_workers is None else args.num_workers
    args.empty_iou = 0.0 if args.empty_iou is None else args.empty_iou
    if not os.path.isdir(args.data):
        raise FileNotFoundError(f"--data {args.data}: folder not found")
    args.out = args.out or f"eval-{args.dataset}-{args.split}.json"
    _check_writable(args.out, args.overwrite)  # before any computing: a bad --out must not cost the whole evaluation
    check_model_ref(args.model, "evaluate", args.revision)


def run(args: argparse.Namespace) -> int:
    import os

    from .._atomic import atomic_open, json_text
    from ..data import build_dataset
    from ..data.base import dataset_options
    from ..data.expressions import unreadable_expressions
    from ..engine.distributed import resolve_device
    from ..engine.evaluation import evaluate
    from ..engine.inputs import check_dataset_bands
    from ..engine.recipe import parse_value
    from ..hub import from_pretrained
    from ..metrics import format_metrics
    from ..scene.outputs import model_fingerprint

    if args.scene is not None:  # check_early has checked the flags' sides and --model
        out = args.out or default_out(args)
        _check_writable(out, args.overwrite)
        set_threads(args)
        return run_scene(args, out)
    out = args.out  # check_early: --data's defaults applied, --data and --out checked
    options = {}
    for item in args.data_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--data-option {item!r} must look like KEY=VALUE")
        options[key.strip()] = parse_value(value.strip())
    set_threads(args)
    device = resolve_device(args.device)
    loading(args.model, args.quiet)
    if os.path.isfile(args.model):  # a checkpoint of rrsis train, in the model of its run's best/ or final/
        from ..engine.checkpoint import model_from_checkpoint

        model = model_from_checkpoint(args.model, map_location=device, **model_limits(args))
    else:
        model = from_pretrained(args.model, map_location=device, **revision_of(args), **model_limits(args))
    if model.tokenizer is None:
        raise ValueError(no_vocabulary(args.model, "evaluate"))
    size = _input_side(args.image_size, model)
    # The model's statistics (and so its band count) unless --data-option sets them; a mismatch is
    # refused below, as training refuses it.
    stats = {} if "transform" in options else {"mean": model.pixel_mean, "std": model.pixel_std}
    if model.pixel_scale is not None:
        stats["scale"] = model.pixel_scale  # the value scaling the model was trained on
    if getattr(model, "band_names", None) and "bands" not in options and "band_names" in (dataset_options(args.dataset) or ()):
        stats["band_names"] = list(model.band_names)  # the images' bands described so are read, as predict reads them
    opts = {**stats, **options, "size": size, "tokenizer": model.tokenizer,
            "return_native_mask": args.native_resolution}
    if args.dataset == "rrsisd":
        opts["mode"] = "eval"
    dataset = build_dataset(args.dataset, args.data, args.split, **opts)
    check_dataset_bands(dataset, model, f"--data {args.data}")
    metrics = evaluate(model, dataset, batch_size=args.batch_size, device=device, amp=args.amp,
                       resolution="native" if args.native_resolution else "eval",
                       empty_iou=args.empty_iou, num_workers=args.num_workers,
                       desc=f"evaluate {args.split}", progress=not args.quiet)
    print(format_metrics({f"{args.dataset} {args.split}": metrics}))
    record = {
        "model": str(args.model), "dataset": args.dataset, "data": str(args.data), "split": args.split,
        "resolution": "native" if args.native_resolution else f"{size}x{size}",
        "empty_iou": args.empty_iou,  # the score of an empty prediction for an empty target: it moves the metrics
    }
    if getattr(args, "revision", None) is not None:
        record["revision"] = args.revision
    record["model_sha256"] = model_fingerprint(model)  # which weights, whatever the name or revision said
    backend = getattr(dataset, "coco_backend_used", None)
    if backend is not None:  # COCO masks (RRSIS-D): published numbers are on pycocotools' masks
        record["coco_backend"] = backend
        print(f"masks decoded by {backend}" + ("" if backend == "pycocotools" else
              ' (polygon masks differ from pycocotools\'; published RRSIS-D numbers need pip install "rrsis[coco]")'))
    unreadable = unreadable_expressions(dataset)  # counted (and warned) once, by evaluate
    if unreadable is not None:  # expressions of which the model reads no word: they weigh on the metrics
        record["unreadable_expressions"] = unreadable
    record["metrics"] = metrics
    with atomic_open(out) as fh:
        fh.write(json_text(record, indent=2, allow_nan=False))  # JSON has no NaN: fail instead
        fh.write("\n")
    print(f"wrote {out}")
    return 0
