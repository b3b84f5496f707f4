"""``rrsis app``: serve a local web page to try a model on an image (needs the ``app`` extra)."""

from __future__ import annotations

import argparse
import sys

from .argtypes import add_threads, set_threads, workers
from .model_limits import add_model_limits, model_limits
from .model_ref import add_revision, check_model_ref, revision_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..app.limits import Limits

    d = Limits()
    p = sub.add_parser(
        "app", help="a local web page to try a model on an image",
        description="Starts a Gradio page: upload an image, type expressions (one per line), see an "
                    "overlay, the area and the time per expression, download the masks. Binds "
                    "127.0.0.1 (this machine only) unless --host says otherwise. Needs "
                    'pip install "rrsis[app]".',
    )
    p.add_argument("--model", metavar="DIR_OR_REPO",
                   help="a save_pretrained directory or a Hub repo id (default: the model `rrsis "
                        "demo` saves, rrsis-demo/gl-msin/final under the working directory)")
    add_revision(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the page, without "
                        "authentication, to the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    add_threads(p)
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb,
                   help=f"largest upload in MiB (default {d.max_upload_mb:g})")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels,
                   help=f"largest image, width x height (default {d.max_pixels:,})")
    p.add_argument("--max-expressions", type=int, default=d.max_expressions,
                   help=f"expressions per request (default {d.max_expressions})")
    p.add_argument("--max-expression-chars", type=int, default=d.max_expression_chars,
                   help=f"characters per expression (default {d.max_expression_chars})")
    p.add_argument("--max-area-chars", type=int, default=d.max_area_chars,
                   help="characters of an area of interest typed or pasted in the page (bounds or GeoJSON "
                        f"text; default {d.max_area_chars:,})")
    p.add_argument("--concurrency", type=workers("--concurrency"), default=d.concurrency,
                   help=f"requests computed at once (default {d.concurrency})")
    p.add_argument("--queue-size", type=int, default=d.queue_size,
                   help=f"requests waiting at most; more are refused (default {d.queue_size})")
    p.add_argument("--max-stored-files", type=int, default=d.max_stored_files,
                   help="most files the server stores (uploads, served results and the requests' result "
                        f"folders); the oldest unused go first (default {d.max_stored_files})")
    p.add_argument("--max-stored-mb", type=float, default=d.max_stored_mb,
                   help=f"most MiB those files hold together (default {d.max_stored_mb:g})")
    p.add_argument("--unused-upload-s", type=float, default=d.unused_upload_s,
                   help=f"seconds before a stored file no request uses is removed (default {d.unused_upload_s:g})")
    p.add_argument("--examples", type=int, default=3, help="generated example scenes (default 3)")
    add_model_limits(p)
    p.set_defaults(func=run, precheck=_check_model)


def _check_model(args: argparse.Namespace) -> None:
    if args.model is not None:  # the demo's model, the default, is looked for by serve
        check_model_ref(args.model, "app", args.revision)
    elif args.revision is not None:
        raise ValueError(f"--revision {args.revision} chooses a revision of the Hub repo --model names; give --model "
                         "ORG/NAME too (without --model, the app serves the local model rrsis demo saves)")


def run(args: argparse.Namespace) -> int:
    import signal

    from ..app import serve
    from ..app.limits import Limits

    limits = Limits(
        max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels,
        max_expressions=args.max_expressions, max_expression_chars=args.max_expression_chars,
        max_area_chars=args.max_area_chars, concurrency=args.concurrency, queue_size=args.queue_size,
        max_stored_files=args.max_stored_files, max_stored_mb=args.max_stored_mb,
        unused_upload_s=args.unused_upload_s,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"rrsis app: warning: binding {args.host} makes the page reachable from other "
              "machines, with no authentication", file=sys.stderr)

    def _stop(signum, frame):  # SIGTERM ends the server the way Ctrl-C does: workspace deleted
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    set_threads(args)
    try:
        busy = serve(args.model, host=args.host, port=args.port, limits=limits, device=args.device,
                     examples=args.examples, **revision_of(args), **model_limits(args))
    except KeyboardInterrupt:
        print("rrsis app: stopped", file=sys.stderr)
        return 0
    if busy:
        # The server is closed and the workspace deleted, but a worker thread is still inside the
        # model. Finalising the interpreter now would abort the process (SIGABRT: the thread,
        # back from torch's C++ code, is ended by pthread_exit, whose unwinding through a
        # noexcept frame calls std::terminate), so leave without finalising: nothing is left
        # to clean up, and the abandoned result had nowhere to go.
        print(f"rrsis app: stopped; {busy} request{'s' if busy > 1 else ''} still computing abandoned",
              file=sys.stderr)
        leave(0)
    return 0


def leave(code: int) -> None:
    """End the process at once with ``code``, its output flushed, skipping the interpreter's
    finalisation (and atexit handlers) that a thread still inside torch would abort."""
    import logging
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)
