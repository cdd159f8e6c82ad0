"""The ``cevnsfit`` console script: signals and standard output are set up before the heavy imports.

Importing the command line (numpy, scipy, typer, rich) takes a noticeable fraction of a second; a Ctrl-C or a
SIGTERM in that time must end like one later on (one line, exit 130), and a closed standard output must be
refused before any file is opened (a file opened then could be given descriptor 1 and receive the output).
"""

from __future__ import annotations

import gc

from .process import (EXIT_INTERRUPTED, EXIT_OUTPUT_FAILED, Interrupted, StdoutError, install_signal_handlers,
                      interrupted_message, one_blas_thread, say, stdout_is_closed)

one_blas_thread()  # before numpy is imported (by .cli below): see process.one_blas_thread


def main() -> None:
    install_signal_handlers()
    if stdout_is_closed():
        say(f"error: {StdoutError(None)}")
        raise SystemExit(EXIT_OUTPUT_FAILED)
    try:
        from .cli import main as cli_main
    except Interrupted as exc:
        say(interrupted_message(exc.signum))
        raise SystemExit(EXIT_INTERRUPTED) from None
    try:
        cli_main()
    finally:
        # The process ends here.  The interpreter's last garbage collection would walk every object the run made
        # (numba's type system, the analysis) only to free memory the system takes back anyway: ~0.4 s of a 5 s
        # `cevnsfit limits` (docs/validation/speed.md).  Frozen objects are left out of it (gc.freeze); the output
        # is written and closed by then, and atexit handlers and weakref finalizers still run.
        gc.freeze()
