"""Deprecated name of :mod:`rrsis.engine.recipe` (training recipes); kept for one release."""

import warnings

from .recipe import *  # noqa: F403  (the old name re-exports all of the new module)
from .recipe import __all__  # noqa: F401

warnings.warn("rrsis.engine.config is rrsis.engine.recipe now; import from there (or from rrsis.engine)",
              DeprecationWarning, stacklevel=2)
