"""Plugins: modules of your own that register parts or models (see docs/guides/compose.md).

A model built from custom parts can only be rebuilt where the module registering them has been
imported. rrsis finds such modules the three ways pytest finds its plugins:

- **entry points**: an installed distribution declares one in the group ``rrsis.plugins``
  (``[project.entry-points."rrsis.plugins"] myparts = "myparts"``); it is imported with the
  built-ins, at the first registry lookup, in Python and in every ``rrsis`` command;
- **``RRSIS_PLUGINS``**: comma-separated module names, imported by every ``rrsis`` command;
- **``--plugin MODULE``** (repeatable) on the commands that build or load a model.

In Python, importing the module yourself is all it takes.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping

from ._config import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "PLUGINS_ENV", "PLUGIN_HINT", "import_plugins", "load_builtins", "load_entry_points"]

ENTRY_POINT_GROUP = "rrsis.plugins"
PLUGINS_ENV = "RRSIS_PLUGINS"
# Ends the message of an unknown part or model name.
PLUGIN_HINT = (". If it comes from a plugin, import the module that registers it first (Python), or "
               f"name it to the rrsis command: --plugin MODULE or {PLUGINS_ENV}=MODULE[,MODULE...].")
_BUILTINS = "rrsis.models"  # the models' names, configurations and tags (no part is imported)
# The parts the models are built from (backbones, fusion, heads, text: timm and torchvision come
# with them), loaded by a part table's first lookup or a model's first build, not to list names.
_BUILTIN_PARTS = "rrsis.models.segmenter"
_builtins_loaded = False
_parts_loaded = False
_log = logging.getLogger(__name__)


def _owner(obj: object) -> str:
    """Who registered a builder: its ``module.qualname`` (what a clash message names)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


def _reregistration(kind: str, name: str, old: str, new: str) -> bool:
    """Whether the registration of ``name`` by the owner ``new`` replaces the one by ``old``.

    Owners are a builder's ``module.qualname`` (:func:`_owner`) or, for a pretrained tag, the
    registering module. The same owner registering again (a notebook cell run again after an
    edit, ``importlib.reload`` of the module) replaces its entry, as Python rebinds a name
    defined again, and says so in a debug log only. rrsis's own entries are never replaced;
    another owner's registration under the name is a clash (``False``: the caller refuses it)."""
    if old != new or old.startswith("rrsis."):
        return False
    _log.debug("%s %r registered again by %s: it replaces the earlier registration", kind, name, new)
    return True


def load_builtins() -> None:
    """Import the built-in models and parts once, so that they register, then the plugins that
    installed distributions declare. :mod:`rrsis.registry` calls it on the first lookup; it
    imports ``rrsis.models`` by name at run time (not an import arrow: a model module imports
    the registry, which imports this module)."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True  # set first: the import below registers through the registry
        try:
            importlib.import_module(_BUILTINS)
            load_entry_points()
        except BaseException:
            _builtins_loaded = False
            raise


def _load_builtin_parts() -> None:
    """:func:`load_builtins`, then the built-in parts, once: what a part table's lookup needs."""
    global _parts_loaded
    load_builtins()
    if not _parts_loaded:
        _parts_loaded = True
        try:
            importlib.import_module(_BUILTIN_PARTS)
        except BaseException:
            _parts_loaded = False
            raise


def load_entry_points() -> list[str]:
    """Import the modules installed distributions declare in the ``rrsis.plugins`` group."""
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise ImportError(f"the rrsis plugin {ep.name!r} (entry point {ep.value!r} in group "
                              f"{ENTRY_POINT_GROUP!r}) failed to import: {exc}") from exc
        loaded.append(ep.value)
    return loaded


def import_plugins(modules: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> list[str]:
    """Import the modules of ``$RRSIS_PLUGINS`` then ``modules`` (the ``--plugin`` values), in
    order, and return their names. A name that is not importable raises :class:`ConfigError`."""
    env = (os.environ if environ is None else environ).get(PLUGINS_ENV, "")
    names = [n.strip() for n in [*env.split(","), *modules] if n.strip()]
    for name in names:
        missing = not all(part.isidentifier() for part in name.split("."))  # a path, not a module name
        if not missing:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name is None or not name.startswith(exc.name):
                    raise  # the plugin was found; something it imports is missing
                missing = True
        if missing:
            raise ConfigError(
                f"plugin module {name!r} not found (from --plugin or ${PLUGINS_ENV}): give an importable "
                f"module name (a file myparts.py in a directory on PYTHONPATH is 'myparts'), not a path"
            )
    return names
