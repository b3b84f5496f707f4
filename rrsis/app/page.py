"""The Gradio page: layout and wiring only; what a request does is :mod:`rrsis.app.session`."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence

from . import inference
from .card import CardSummary
from .limits import AREA_FILE_TYPES, Limits
from .session import Workspace, preview, respond

__all__ = ["build_app", "check_port", "require_gradio"]

INTRO = (
    "# rrsis: referring segmentation\n"
    "Upload an aerial image (or pick a generated example scene), type what to find, one expression "
    "per line, and press **Segment**. Each expression gets its own overlay, area and mask file."
)


def require_gradio():
    """Import gradio, or say how to install it."""
    try:
        import gradio
    except ImportError as exc:
        raise ModuleNotFoundError(
            f'the app needs gradio ({exc}): pip install "rrsis[app]"'
        ) from None
    return gradio


def _theme(gr):
    # System fonts only: the default theme fetches web fonts, and the app must work offline.
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_app(
    model,
    *,
    card: CardSummary,
    workspace: Workspace,
    limits: Limits | None = None,
    examples: Sequence[tuple[str, str]] = (),
):
    """The page as a ``gradio.Blocks``, queued with ``limits``' concurrency and queue size.

    Args:
        model: the loaded model, shared by every request.
        card: the model-card panel's content.
        workspace: where results are written.
        limits: bounds of a request.
        examples: ``(image path, expressions)`` offered as example scenes.
    """
    gr = require_gradio()
    limits = limits or Limits()

    def on_upload(upload):
        with workspace.using(upload):
            workspace.prune_uploads(limits)  # each new upload: the stored files bounded at once
        image, message = preview(upload, limits)
        return image, message

    def on_segment(upload, expressions, mode, threshold, bands="", crs="", area="", area_crs="", area_file=None):
        r = respond(model, workspace, limits, upload, expressions, mode, threshold, bands, crs, area, area_crs,
                    area_file)
        return r.gallery, r.table, (r.files or None), r.message

    with gr.Blocks(title="rrsis app", analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image or GeoTIFF", file_count="single", type="filepath",
                                 elem_id="upload")
                shown = gr.Image(label="Uploaded image", interactive=False, height=260,
                                 elem_id="preview", format="png")
                expressions = gr.Textbox(
                    label=f"Expressions (one per line, at most {limits.max_expressions}, "
                          f"{limits.max_expression_chars} characters each)",
                    lines=3, placeholder="the red building\nall storage tanks", elem_id="expressions",
                )
                with gr.Row():
                    # "ranked" only when the model has a scene ranker.
                    mode = gr.Radio(list(inference.model_modes(model)), value=inference.MODES[0],
                                    label="Mode", elem_id="mode")
                    threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Threshold",
                                          elem_id="threshold")
                n = getattr(model, "in_chans", 3)
                bands = gr.Textbox(label=f"Bands the model reads ({n}, counted from 1, e.g. "
                                         f"{','.join(str(i + 1) for i in range(n))}); empty: the default",
                                   value="", max_lines=1, elem_id="bands")
                crs = gr.Textbox(label="CRS of a GeoTIFF that has a transform but no CRS (e.g. EPSG:32633; "
                                       "none: outputs without georeference); empty: the file's own",
                                 value="", max_lines=1, elem_id="crs")
                with gr.Accordion("Area of interest (GeoTIFF only): segment one part of the scene", open=False,
                                  elem_id="area-panel"):
                    area = gr.Textbox(
                        label="Area of interest: bounds minx,miny,maxx,maxy, or GeoJSON text (a geometry, "
                              f"Feature or FeatureCollection, at most {limits.max_area_chars:,} characters); "
                              "empty: the whole scene",
                        value="", lines=2, max_lines=8, elem_id="area",
                        placeholder='-70.30,43.62,-70.22,43.68   or   {"type": "Polygon", "coordinates": ...}',
                    )
                    area_crs = gr.Textbox(label="Area CRS: the CRS of those coordinates (e.g. EPSG:32633); "
                                                "empty: EPSG:4326, longitude and latitude (a file: its own)",
                                          value="", max_lines=1, elem_id="area-crs")
                    area_file = gr.File(label="Or an area file: GeoJSON, GeoPackage or zipped shapefile",
                                        file_count="single", type="filepath", file_types=list(AREA_FILE_TYPES),
                                        elem_id="area-file")
                button = gr.Button("Segment", variant="primary", elem_id="segment")
                if examples:
                    gr.Examples([[p, t] for p, t in examples], inputs=[upload, expressions],
                                label="Example scenes (generated with rrsis.data.synthetic)")
            with gr.Column(scale=1):
                message = gr.Markdown(label="Status", elem_id="message")
                gallery = gr.Gallery(label="Overlay per expression", columns=2, height=420,
                                     format="png", elem_id="overlays")
                table = gr.Markdown(label="Areas", elem_id="areas")
                files = gr.File(label="Downloads (mask PNG; GeoTIFF and GeoJSON for georeferenced "
                                      "scenes)", file_count="multiple", interactive=False,
                                elem_id="downloads")
                with gr.Accordion("Model card", open=True):
                    gr.Markdown(card.markdown(), elem_id="card")
                gr.Markdown(
                    f"Limits: uploads up to {limits.max_upload_mb:g} MiB and "
                    f"{limits.max_pixels:,} pixels; {limits.concurrency} request(s) at a time, "
                    f"{limits.queue_size} waiting at most. Uploads unused for "
                    f"{limits.unused_upload_s:g} s are removed (upload again)."
                )
        upload.change(on_upload, inputs=upload, outputs=[shown, message], api_name=False,
                      concurrency_limit=2, concurrency_id="preview")
        button.click(on_segment, inputs=[upload, expressions, mode, threshold, bands, crs, area, area_crs, area_file],
                     outputs=[gallery, table, files, message], api_name="segment",
                     concurrency_limit=limits.concurrency, concurrency_id="model")
    app.queue(max_size=limits.queue_size, default_concurrency_limit=1)
    workspace.start_pruning(limits)  # uploads no event names (a bare POST to the upload route)
    return app


def _port_in_use(host: str, port: int) -> OSError:
    return OSError(f"port {port} is already in use on {host} (another rrsis app or server?): "
                   f"stop it, or choose another port with --port, e.g. --port {port + 1}")


def check_port(host: str, port: int) -> None:
    """Raise :class:`OSError` with one sentence naming ``port`` and ``--port`` when the server
    could not listen on ``host:port``; checked before the model is loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            s.bind((host, port))
    except OverflowError:
        raise OSError(f"port {port} is not a port number (0-65535): choose one with --port") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _port_in_use(host, port) from None
        if exc.errno == errno.EACCES:
            raise OSError(f"port {port} on {host} needs privileges this user lacks: choose a port "
                          "above 1023 with --port") from None
        raise OSError(f"cannot listen on {host} port {port}: {exc.strerror or exc} (see --host, --port)") from None


def launch(app, *, host: str, port: int, limits: Limits, block: bool = True):
    """Serve ``app``; with ``block=False`` return at once (the server runs in a thread)."""
    gr = require_gradio()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        return app.launch(
            server_name=host, server_port=port, max_file_size=limits.max_upload_bytes,
            prevent_thread_lock=not block, show_error=False, quiet=False, theme=_theme(gr),
            ssr_mode=False, inbrowser=False, share=False,
        )
    except OSError as exc:  # taken since check_port: gradio's message names its own launch() argument
        if "Cannot find empty port" in str(exc):
            raise _port_in_use(host, port) from None
        raise
