"""The training loop of the anchors' recipe, resumable to the bit on the CPU.

One :class:`Trainer` runs one recipe (see :mod:`rrsis.engine.recipe`): AdamW with the anchors'
parameter groups, per-iteration poly decay (optional warm-up), the referring loss, mixed
precision, gradient accumulation and clipping, validation on oIoU with the best model kept,
atomic checkpoints that hold everything a resumed run needs (weights, optimiser, schedule,
grad scaler, RNG states of every rank, epoch and position in the epoch's seeded order), a
JSONL log and a plot. Under ``torchrun`` it trains with DistributedDataParallel.

The trainer is one class: its state, the loop, validation and its outputs. What it uses but
is not the trainer lives beside it: checkpoint files and RNG states (:mod:`.checkpoint`), the
run-folder rules (:mod:`.run_folder`), the optimiser and schedule (:mod:`.optim`), the process
group (:mod:`.distributed`), the JSONL log (:mod:`.logs`) and the plot (:mod:`rrsis.pictures`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._atomic import atomic_write, disk_errors, json_text
from .._config import ConfigError
from .._grad_checkpoint import set_grad_checkpointing
from ..data import collate_fn
from ..data.expressions import unreadable_expressions
from ..data.transforms import check_image_size
from ..kernels.compile import compile_model
from ..losses import ReferringLoss
from ..pictures import plot_history
from .build import build_model
from .checkpoint import (
    CHECKPOINT_DIR,
    FORMAT,
    atomic_save,
    capture_rng,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    restore_rng,
    resume_mismatch,
)
from .distributed import (
    DistInfo,
    ResumableSampler,
    all_gather_objects,
    all_reduce_mean,
    cleanup_distributed,
    setup_distributed,
)
from .evaluation import autocast_context, evaluate, resolve_amp
from .inputs import (
    build_datasets,
    build_tokenizer,
    check_dataset_bands,
    resolve_statistics,
    text_words,
)
from .logs import JsonlLogger
from .optim import build_optimizer, build_scheduler
from .recipe import DEFAULTS, merge
from .resume_rule import data_digest, path_record
from .run_folder import clear_run, not_a_folder, resume_plan
from .run_record import evaluation_record, init_text, training_record, weights_sha256
from .validate import check_model_name, format_output_dir, show_progress, validate_config

__all__ = ["Trainer", "build_datasets", "build_model", "build_tokenizer", "text_words"]

logger = logging.getLogger(__name__)

# The end of a full-disk error: what survives and how to go on.
_RESUME = ("the run's checkpoints are intact: free space and continue with --resume auto, which goes on "
           "from the last checkpoint and writes best/ and final/ again from there")

class Trainer:
    """Train one recipe; :meth:`fit` runs (or resumes) it.

    Every part can be given ready-made instead of built from the config (the demo passes
    in-memory datasets and its own model).

    Args:
        config: a recipe from :func:`rrsis.engine.load_config` (missing keys take defaults).
        model: the model (default: built from ``config["model"]``).
        tokenizer: the tokenizer (default: :func:`build_tokenizer`).
        train_dataset, val_dataset: datasets yielding rrsis sample dicts (default: built from
            ``config["data"]``); a dataset with a ``tokenizer`` attribute set to ``None`` gets
            the run's tokenizer.
        run_name: a ``run`` label added to every log record (several runs in one plot).
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        model: nn.Module | None = None,
        tokenizer=None,
        train_dataset: Dataset | None = None,
        val_dataset: Dataset | None = None,
        run_name: str | None = None,
    ) -> None:
        self.cfg = merge(DEFAULTS, config)
        validate_config(self.cfg)
        if model is None:
            check_model_name(self.cfg["model"])  # before any data is read
        tc = self.cfg["train"]
        self.run_name = run_name
        if tc["deterministic"]:
            # cuBLAS needs this before its first use to be deterministic.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.info: DistInfo = setup_distributed(tc["device"])
        if tc["threads"]:
            torch.set_num_threads(int(tc["threads"]))
        self.seed = int(tc["seed"])
        # Seeded before anything random (model init, dropout): a fresh run is reproducible.
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        torch.manual_seed(self.seed)
        # Filled once, on rank 0, so that every rank names the same folder.
        out = format_output_dir(str(tc["output_dir"]), self.cfg.get("recipe") or "run")
        self.output_dir = Path(all_gather_objects(out, self.info)[0])
        if blocked := not_a_folder(self.output_dir):  # before any data is read
            raise FileExistsError(blocked)

        data_cfg = self.cfg["data"]
        self._data_built, model_built = train_dataset is None, model is None
        if train_dataset is None:
            train_dataset, built_val = build_datasets(data_cfg, self.cfg["model"])
            if val_dataset is None:
                val_dataset = built_val
        # model.mean/std "auto": the numbers measured on the training split, in the model and config.json
        self.cfg["model"] = resolve_statistics(self.cfg["model"], train_dataset)
        if model is None:
            model = build_model(self.cfg["model"], image_size=data_cfg["image_size"],
                                scale=getattr(train_dataset, "scale", None), rgb=getattr(train_dataset, "rgb", None),
                                band_names=getattr(train_dataset, "band_names", None),
                                training_scale=getattr(train_dataset, "training_scale", None))
        if tokenizer is None:
            tokenizer = build_tokenizer(data_cfg.get("tokenizer"), model, train_dataset)
        text_vocab = (model.config.get("text") or {}).get("vocab_size") if hasattr(model, "config") else None
        if text_vocab is not None and len(tokenizer) > text_vocab:
            raise ValueError(
                f"the tokenizer has {len(tokenizer)} tokens but the model's text encoder only "
                f"{text_vocab}: set model.text_vocab_size >= {len(tokenizer)}"
            )
        model.tokenizer = tokenizer
        if hasattr(model, "size_divisor"):  # the model's own rule: 64 is the smallest side of the zoo's models
            try:
                check_image_size(data_cfg["image_size"], model.image_size, model.size_divisor,
                                 getattr(model, "feature_stride", None), unset=None)  # built at this size
            except ValueError as exc:
                raise ConfigError(f"data.image_size: {exc}") from None
        for ds, split in ((train_dataset, "data.train_split"), (val_dataset, "data.val_split")):
            check_dataset_bands(ds, model, f"the {split} dataset")
        for ds in (train_dataset, val_dataset):
            if ds is not None and hasattr(ds, "tokenizer") and ds.tokenizer is None:
                ds.tokenizer = tokenizer
            if ds is not None:  # counted (and told) once here, not once in each DataLoader worker
                unreadable_expressions(ds, log=self.info.is_main)
        self.tokenizer = tokenizer
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        if val_dataset is not None and len(val_dataset) == 0:
            raise ValueError("the validation set is empty (every sample skipped, or an empty split): "
                             "set data.val_split to null to train without validation")

        self.device = self.info.device
        self.model = model.to(self.device)
        self.model.train()
        if tc["grad_checkpointing"]:  # before compiling: the compiled graph recomputes too
            try:
                set_grad_checkpointing(self.model, True)
            except ValueError as exc:
                raise ConfigError(f"train.grad_checkpointing: {exc}") from None
        self.compiled = bool(tc["compile"])
        if self.compiled:
            compile_model(self.model)  # in place: state_dict keys and save_pretrained unchanged
        # Batch values (finite pixels, ids in the vocabulary, no empty text) are checked on the
        # host where the loader made them: on a GPU, or compiled, the forward reads none.
        self.host_checks = self.compiled or self.device.type != "cpu"
        self.net: nn.Module = self.model
        if self.info.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=bool(tc["find_unused_parameters"]),
            )

        self.batch_size = int(tc["batch_size"])
        self.accum = max(1, int(tc["grad_accum_steps"]))
        self.sampler = ResumableSampler(train_dataset, seed=self.seed, rank=self.info.rank,
                                        world_size=self.info.world_size, shuffle=True)
        self.micro_per_epoch = (self.sampler.num_samples // self.batch_size) // self.accum * self.accum
        self.steps_per_epoch = self.micro_per_epoch // self.accum
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the training set ({len(train_dataset)} samples over {self.info.world_size} "
                f"process(es)) is smaller than one step of batch_size {self.batch_size} x "
                f"grad_accum_steps {self.accum}"
            )
        if tc["max_steps"]:
            self.total_steps = int(tc["max_steps"])
            self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        else:
            self.epochs = int(tc["epochs"])
            self.total_steps = self.epochs * self.steps_per_epoch

        oc = self.cfg["optim"]
        self.optimizer = build_optimizer(
            self.model, lr=float(oc["lr"]), weight_decay=float(oc["weight_decay"]), betas=oc["betas"],
            eps=float(oc["eps"]), amsgrad=bool(oc["amsgrad"]), no_decay_keywords=oc["no_decay_keywords"],
            text_lr=oc["text_lr"], fused=bool(oc["fused"]),
        )
        self.scheduler = build_scheduler(
            self.optimizer, self.total_steps, power=float(oc["poly_power"]),
            warmup_steps=int(oc["warmup_steps"]), warmup_start=float(oc["warmup_start"]),
        )
        self.amp_dtype = resolve_amp(tc["amp"], self.device)
        # fp16 needs loss scaling; bf16 has fp32's range and does not.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.loss_fn = ReferringLoss(**self.cfg["loss"]).to(self.device)

        self.step = 0
        self.epoch = 0
        self.position = 0  # micro-batches of the current epoch already consumed
        self.best: dict[str, Any] = {}
        self._pending_losses: list[float] = []
        self._owned_checkpoints: list[Path] = []  # pruning never touches other files
        self.history_path = self.output_dir / "log.jsonl"
        self.log = JsonlLogger(self.history_path, enabled=self.info.is_main)
        # For the cards of best/ and final/ (run_record): model.init's weights hashed as read (a
        # resumed run keeps the hash its checkpoint recorded).
        self._model_built = model_built
        init = self.cfg["model"].get("init")
        self._init_sha = weights_sha256(init) if model_built and init and self.info.is_main else None

    # ------------------------------------------------------------- resumable state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (collective: every rank must call it)."""
        rng = all_gather_objects(capture_rng(), self.info)
        return {
            "format": FORMAT,
            "version": 1,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "sampler": {"seed": self.seed, "epoch": self.epoch, "start": self.position * self.batch_size},
            "rng": rng,
            "best": dict(self.best),
            # Losses since the last log line, so a resumed run logs the same averages.
            "pending_losses": all_gather_objects(list(self._pending_losses), self.info),
            "world_size": self.info.world_size,
            "batch_size": self.batch_size,
            "total_steps": self.total_steps,
            "tokenizer": {"vocab": [t for t, _ in sorted(self.tokenizer.vocab.items(), key=lambda kv: kv[1])],
                          "max_tokens": self.tokenizer.max_tokens},
            "config": json.loads(json.dumps(self.cfg, default=str)),
            "paths": path_record(self.cfg),
            "data_digest": self._data_digest(),
            "init_sha256": self._init_sha,
        }

    def _data_digest(self) -> str | None:
        if not hasattr(self, "_digest"):  # stats each training file once per run
            self._digest = data_digest(self.train_dataset, self.cfg["data"].get("root"))
        return self._digest

    def load_state_dict(self, state: dict[str, Any], run: Path | None = None) -> None:
        """Restore :meth:`state_dict` output: the same recipe (but for the keys of
        :data:`~rrsis.engine.resume_rule.RESUME_MAY_CHANGE`), data, world size and batch size;
        ``run``: the checkpoint's run folder, named in a refusal's advice."""
        vocab = [t for t, _ in sorted(self.tokenizer.vocab.items(), key=lambda kv: kv[1])]
        why = resume_mismatch(state, self.cfg, vocab, self.tokenizer.max_tokens, run=run,
                              data_digest=self._data_digest())
        if why:
            raise ValueError(why)
        for key, mine in (("world_size", self.info.world_size), ("batch_size", self.batch_size),
                          ("total_steps", self.total_steps)):
            if state.get(key) != mine:
                raise ValueError(
                    f"checkpoint has {key}={state.get(key)} but this run has {mine}: resume with the "
                    "same recipe, batch size and number of processes"
                )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.position = int(state["step"]), int(state["epoch"]), int(state["position"])
        self.best = dict(state.get("best") or {})
        if state.get("init_sha256"):
            self._init_sha = tuple(state["init_sha256"])
        pending = state.get("pending_losses") or [[]]
        mine = pending[self.info.rank] if len(pending) == self.info.world_size else []
        self._pending_losses = [float(v) for v in mine]
        rng = state["rng"]
        restore_rng(rng[self.info.rank] if len(rng) == self.info.world_size else rng[0])

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-N.pt`` atomically (rank 0) and prune this run's old ones."""
        state = self.state_dict()
        if not self.info.is_main:
            return None
        path = atomic_save(state, checkpoint_path(self.output_dir, self.step))
        if path not in self._owned_checkpoints:
            self._owned_checkpoints.append(path)
        prune_checkpoints(self.output_dir, int(self.cfg["train"]["keep_checkpoints"]),
                          owned=self._owned_checkpoints)
        return path

    def _open_run(self, resume: Any, overwrite: bool) -> bool:
        """Apply the run-folder rules, write ``config.json``, resume when asked; whether it did.

        Rank 0 decides and every rank follows its decision (errors are raised on every rank,
        so none waits forever in a collective call).
        """
        plan = resume_plan(self.output_dir, resume, overwrite) if self.info.is_main else None
        plan = all_gather_objects(plan, self.info)[0]
        kind, detail = plan
        if kind == "error":
            exc_type = {"FileExistsError": FileExistsError, "FileNotFoundError": FileNotFoundError}.get(
                detail[0], ValueError)
            raise exc_type(detail[1])
        if self.info.is_main:
            if kind == "fresh-replace" or (kind == "fresh" and overwrite):
                clear_run(self.output_dir)
            self.output_dir.mkdir(parents=True, exist_ok=True)
        if kind != "resume":
            self._write_config()
            return False
        path = Path(detail)
        state = load_checkpoint(path, map_location="cpu")
        self.load_state_dict(state, run=path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent)
        self._write_config()  # only now: a refused resume leaves the run's own config.json
        self.log.truncate_after(self.step)
        own = (self.output_dir / CHECKPOINT_DIR).resolve()
        if path.resolve().parent == own:
            # The run being continued: its earlier checkpoints are this run's too.
            self._owned_checkpoints = [p for s, p in list_checkpoints(self.output_dir) if s <= self.step]
        return True

    def _write_config(self) -> None:
        if self.info.is_main:
            atomic_write(self.output_dir / "config.json", json_text(self.cfg, indent=2, default=str) + "\n")

    # ------------------------------------------------------------------ loop
    def _loader(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(self.position * self.batch_size)
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(epoch)
        workers = int(self.cfg["data"]["num_workers"])
        # A dedicated generator: the loader draws its worker base seed from it instead of the
        # global torch RNG, which would shift dropout draws between a resumed and a straight run.
        gen = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
        return DataLoader(
            self.train_dataset, batch_size=self.batch_size, sampler=self.sampler, drop_last=True,
            num_workers=workers, collate_fn=collate_fn, generator=gen,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
        )

    def _micro_step(self, batch: dict[str, Any], sync: bool) -> float:
        dev = self.device
        ctx = self.net.no_sync() if (self.info.distributed and not sync) else contextlib.nullcontext()
        if self.host_checks and hasattr(self.model, "check_inputs"):
            self.model.check_inputs(batch["pixel_values"], batch["input_ids"], batch["attention_mask"],
                                    values=True)
        with ctx:
            where = {"position": batch["position"].to(dev)} if "position" in batch else {}  # scene crops' boxes
            with autocast_context(self.amp_dtype, dev):
                out = self.net(batch["pixel_values"].to(dev, non_blocking=True),
                               batch["input_ids"].to(dev, non_blocking=True),
                               batch["attention_mask"].to(dev, non_blocking=True), **where)
                loss = self.loss_fn(out, batch["mask"].to(dev, non_blocking=True))
            self.scaler.scale(loss / self.accum).backward()
        return float(loss.detach())

    def _optimizer_step(self) -> float | None:
        clip = self.cfg["train"]["clip_grad_norm"]
        norm = None
        if clip:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.requires_grad]
            norm = float(torch.nn.utils.clip_grad_norm_(params, float(clip)))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return norm

    def fit(self, resume: str | os.PathLike | None = None, overwrite: bool = False) -> dict[str, Any]:
        """Train to the end of the recipe, resuming first if asked.

        A new run needs an empty (or missing) output folder: a folder that holds files raises
        ``FileExistsError`` unless ``resume`` continues the run there or ``overwrite`` replaces
        it.

        Args:
            resume: a checkpoint path; ``"auto"`` (the newest good checkpoint of the output
                folder; ``FileNotFoundError`` when there is none); ``"auto-or-new"`` (the same,
                or a new run when the folder holds no checkpoint at all); or ``None``.
            overwrite: remove a previous run's files from the output folder first.

        Returns:
            ``{"output_dir", "steps", "epochs", "best", "final", "train_seconds"}``.
        """
        tc = self.cfg["train"]
        main = self.info.is_main
        resumed = self._open_run(resume, overwrite)
        if main and not resumed:
            self.log.truncate_after(-1)
        ckpt_every = int(tc["checkpoint_every"] or 0)
        log_every = max(1, int(tc["log_every"]))
        eval_every = int(tc["eval_every"] or 0)
        bar = None
        if show_progress(tc["progress"]) and main:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                       desc=f"train {self.run_name or self.cfg.get('recipe') or ''}".strip())
        # CPU training flushes subnormal floats to zero (x86 handles them many times slower;
        # measured: no effect on accuracy beyond seed noise, README "CPU threads and subnormals").
        flush = bool(tc["flush_denormal"]) and self.device.type == "cpu"
        if flush:
            torch.set_flush_denormal(True)
        start = time.time()
        losses = self._pending_losses
        t_log, n_log = time.time(), 0
        final: dict[str, Any] | None = None
        validated_at = -1
        try:
            while self.step < self.total_steps and self.epoch < self.epochs:
                loader = self._loader(self.epoch)
                micro = self.position
                for batch in loader:
                    if micro >= self.micro_per_epoch or self.step >= self.total_steps:
                        break
                    sync = (micro + 1) % self.accum == 0
                    losses.append(self._micro_step(batch, sync))
                    n_log += batch["pixel_values"].shape[0]
                    micro += 1
                    if not sync:
                        continue
                    norm = self._optimizer_step()
                    self.position = micro
                    if bar is not None:
                        bar.update(1)
                    if self.step % log_every == 0 or self.step == self.total_steps:
                        loss = all_reduce_mean(sum(losses) / len(losses), self.info)
                        dt = max(time.time() - t_log, 1e-9)
                        rec = {"type": "train", "step": self.step, "epoch": self.epoch + 1, "loss": loss,
                               "lr": self.scheduler.get_last_lr()[0],
                               "samples_per_s": n_log * self.info.world_size / dt}
                        if norm is not None:
                            rec["grad_norm"] = norm
                        self._record(rec)
                        if bar is not None:
                            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{rec['lr']:.2e}")
                        losses.clear()
                        t_log, n_log = time.time(), 0
                    if ckpt_every and self.step % ckpt_every == 0 and self.step < self.total_steps \
                            and self.position < self.micro_per_epoch:
                        self.save_checkpoint()
                if self.step >= self.total_steps and self.position < self.micro_per_epoch:
                    break  # max_steps reached mid-epoch: the final block below finishes
                # End of the epoch.
                self.epoch += 1
                self.position = 0
                last = self.step >= self.total_steps or self.epoch >= self.epochs
                if (eval_every and self.epoch % eval_every == 0) or last:
                    final = self.validate()
                    validated_at = self.step
                self.save_checkpoint()
                self._plot()
            if validated_at != self.step:
                final = self.validate()
                self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
            if flush:
                torch.set_flush_denormal(False)
        summary = {
            "output_dir": str(self.output_dir),
            "steps": self.step,
            "epochs": self.epoch,
            "best": self.best,
            "final": final,
            "train_seconds": time.time() - start,
        }
        decoders = {split: getattr(ds, "coco_backend_used", None)
                    for split, ds in (("train", self.train_dataset), ("val", self.val_dataset))}
        if any(decoders.values()):  # RRSIS-D polygons: which rule rasterised them
            summary["coco_backend"] = {k: v for k, v in decoders.items() if v}
        if main:
            self._save_model_dir(self.output_dir / "final", final, self._evaluation())
            with disk_errors(self.output_dir / "summary.json", "the run summary", advice=_RESUME):
                atomic_write(self.output_dir / "summary.json", json_text(summary, indent=2, default=str) + "\n")
            self._plot()
        return summary

    # ---------------------------------------------------------- validation and outputs
    def _evaluation(self, chosen_by: str | None = None) -> dict[str, Any]:
        """Where this step's validation measured its metrics, for the card (split, step, size)."""
        return evaluation_record(self.cfg, step=self.step, total_steps=self.total_steps,
                                 data_built=self._data_built, chosen_by=chosen_by)

    def _save_model_dir(self, directory: Path, metrics: dict[str, Any] | None, evaluation: dict[str, Any]) -> Path:
        """``best/`` or ``final/`` through ``save_pretrained`` (a whole folder or none), its card
        saying where ``metrics`` were measured (``evaluation``) and the run's recipe: a full
        disk ends the run with an error naming the folder and the space it needs."""
        try:
            from ..hub import save_pretrained
        except ImportError:  # hub not available: a plain state file instead
            path = directory.with_suffix(".pt")
            atomic_save({"model": self.model.state_dict(), "metrics": metrics or {},
                         "config": getattr(self.model, "config", {})}, path)
            return path
        dataset = self.cfg["data"].get("dataset") if self.cfg["data"].get("root") else None
        clean = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        # The weights are most of it; the old folder stays until the new one is complete.
        needed = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        with disk_errors(directory, f"the {directory.name} model folder", needed=needed,
                         advice=f"{directory} is as it was before (or absent); {_RESUME}"):
            return save_pretrained(self.model, directory, metrics=clean or None, dataset=dataset,
                                   evaluation=evaluation, training=self._training_record())

    def _training_record(self) -> dict[str, str]:
        init = (init_text(self.cfg["model"], self._init_sha) if self._model_built
                else "a model given to the `Trainer` in Python")
        return training_record(
            self.cfg, arch=getattr(self.model, "arch", type(self.model).__name__), init=init,
            data_built=self._data_built, world_size=self.info.world_size, steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps, epochs=self.epochs, config_path=(self.output_dir / "config.json").absolute())

    def _plot(self) -> None:
        if not self.info.is_main:
            return
        with warnings.catch_warnings(record=True) as caught, \
                disk_errors(self.output_dir / "training.png", "the training plot", advice=_RESUME):
            warnings.simplefilter("always")
            plot_history(self.log.records(), self.output_dir / "training.png",
                         title=str(self.cfg.get("recipe") or ""))
        for w in caught:
            logger.warning("%s", w.message)

    def _record(self, record: dict[str, Any]) -> None:
        if self.run_name:
            record = {"run": self.run_name, **record}
        self.log.log(record)

    def validate(self) -> dict[str, Any] | None:
        """Score the validation set (all ranks take part); ``None`` without one."""
        if self.val_dataset is None:
            return None
        tc = self.cfg["train"]
        metrics = evaluate(
            self.net, self.val_dataset, batch_size=int(tc["eval_batch_size"] or self.batch_size),
            device=self.device, amp=tc["amp"], num_workers=int(self.cfg["data"]["num_workers"]),
            info=self.info, progress=show_progress(tc["progress"]), desc="validate",
        )
        # Epochs count from 1 in every record: the one this step belongs to (one ended: its number).
        epoch = self.epoch + (1 if self.position else 0)
        self._record({"type": "val", "step": self.step, "epoch": epoch, **metrics})
        better = not self.best or metrics["oIoU"] > self.best.get("oIoU", -1.0)
        if better and self.info.is_main:
            self._save_model_dir(self.output_dir / "best", metrics, self._evaluation(chosen_by="oIoU"))
            # Only once best/ holds it: a failed save must not leave a best that no folder has.
            self.best = {"step": self.step, "epoch": epoch, **metrics}
        if self.info.distributed:
            self.best = all_gather_objects(self.best, self.info)[0]
        return metrics

    def close(self) -> None:
        """Leave the process group (when this trainer joined it)."""
        cleanup_distributed(self.info)
