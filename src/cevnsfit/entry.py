"""The ``cevnsfit`` console script: signals and standard output are set up before the heavy imports.

Importing the command line (numpy, scipy, typer, rich) takes a noticeable fraction of a second; a Ctrl-C or a
SIGTERM in that time must end like one later on (one line, exit 130), and a closed standard output must be
refused before any file is opened (a file opened then could be given descriptor 1 and receive the output).
"""

from __future__ import annotations

import os

# One BLAS thread unless the user sets one: the work is many small batched products (profiled chi^2 per grid
# point), where OpenBLAS's threads only spin against each other -- `cevnsfit limits --dataset all` took 169 s of
# CPU with the default threads and 54 s with one on the 2-core test machine (benchmarks/bench_xenonnt.py).  Set
# before numpy is imported (by .process below), the only moment OpenBLAS reads it.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


from .process import (EXIT_INTERRUPTED, EXIT_OUTPUT_FAILED, Interrupted, StdoutError, install_signal_handlers,
                      interrupted_message, say, stdout_is_closed)


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
    cli_main()
