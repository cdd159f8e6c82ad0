"""Figures.  Importing this package (which every plotting module does before it imports matplotlib) gives matplotlib
a usable configuration folder first."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile


def _private_config_dir_if_home_unusable() -> None:
    """matplotlib keeps its font cache in ``$MPLCONFIGDIR``, else ``$XDG_CONFIG_HOME/matplotlib`` or
    ``~/.config/matplotlib``.  When that folder cannot be made or written (an unreadable or read-only home) matplotlib
    falls back to a temporary folder itself, but says so in two lines on stderr -- which breaks the command line's
    contract of at most one line ``error: ...`` (README, "Faults").  Do the same silently: a private temporary folder,
    removed at exit.  Effective only before matplotlib is first imported."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    wanted = os.path.join(base, "matplotlib")
    try:
        os.makedirs(wanted, exist_ok=True)  # what matplotlib would do
        if os.access(wanted, os.W_OK):
            return
    except OSError:
        pass
    tmp = tempfile.mkdtemp(prefix="cevnsfit-matplotlib-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = tmp


_private_config_dir_if_home_unusable()
