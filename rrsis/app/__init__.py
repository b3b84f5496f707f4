"""``rrsis app``: a local web page to try a model on an image (Gradio, the ``app`` extra).

Layout: :mod:`.inference` is the one function that computes results (the page never predicts by
itself); :mod:`.limits` bounds a request; :mod:`.session` turns a request into what the page shows;
:mod:`.page` is the Gradio layout; :mod:`.card` reads the model card; :mod:`.examples` makes the
example scenes. Only :mod:`.page` imports gradio.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .inference import MODES, InputError, Result, run
from .limits import Limits

__all__ = ["DEFAULT_MODEL", "MODES", "InputError", "Limits", "Result", "resolve_model", "run", "serve"]

logger = logging.getLogger(__name__)

# Where ``rrsis demo`` (default --out) saves its model, relative to the working directory.
DEFAULT_MODEL = Path("rrsis-demo") / "gl-msin" / "final"


def resolve_model(ref: str | None) -> str:
    """The model to serve: ``ref``, or the demo's model when ``ref`` is None (checked to exist)."""
    if ref:
        return str(ref)
    where = DEFAULT_MODEL.absolute()
    if not (where / "config.json").is_file():
        raise FileNotFoundError(
            f"no --model given and no demo model at {where} (looked for config.json there). "
            "Make one with `rrsis demo` (trains a small GL-MSIN on the CPU in a few minutes and "
            f"saves it to {DEFAULT_MODEL}), or pass --model DIR_OR_REPO"
        )
    return str(DEFAULT_MODEL)


def serve(model_ref: str | None = None, *, host: str = "127.0.0.1", port: int = 7860,
          limits: Limits | None = None, device: str = "cpu", examples: int = 3,
          max_params: int | None = None, max_activation_gib: float | None = None,
          revision: str | None = None) -> int:
    """Load the model once, build the page, serve it until interrupted, then delete the workspace.

    ``max_params`` / ``max_activation_gib``: :func:`rrsis.from_pretrained`'s cost limits (``None``:
    ``$RRSIS_MAX_PARAMS`` / ``$RRSIS_MAX_ACTIVATION_GIB``, then the defaults). ``revision``: the
    Hub branch, tag or commit of ``model_ref`` (:func:`rrsis.from_pretrained`'s ``revision=``).

    Returns:
        The requests still computing when the server stopped: their worker threads are inside
        the model and cannot be interrupted. A process that ends its interpreter while they run
        aborts (a thread inside torch cannot take the interpreter back while it finalises), so
        ``rrsis app`` then leaves with ``os._exit`` once the workspace is deleted."""
    from .page import build_app, check_port, launch, require_gradio

    limits = limits or Limits()

    require_gradio()  # before the slow model load: a missing extra, or a port in use, fails at once
    check_port(host, port)
    source = resolve_model(model_ref)
    from .session import Workspace

    with Workspace() as ws:
        # Gradio keeps uploads and served files under GRADIO_TEMP_DIR: inside the workspace.
        os.environ["GRADIO_TEMP_DIR"] = str(ws.uploads)
        import torch

        from ..hub import from_pretrained
        from .card import summarise
        from .examples import write_examples

        model = from_pretrained(source, map_location=torch.device(device), max_params=max_params,
                                max_activation_gib=max_activation_gib, revision=revision).eval()
        card = summarise(model, source)
        scenes = write_examples(ws.examples, examples) if examples else []
        app = build_app(model, card=card, workspace=ws, limits=limits, examples=scenes)
        print(f"rrsis app: {card.name} from {source}; workspace {ws.root} (deleted on exit)",
              flush=True)
        try:
            launch(app, host=host, port=port, limits=limits, block=True)
        except KeyboardInterrupt:
            pass
        finally:
            app.close()  # no new request starts; one computing runs on in its thread
        return ws.running
