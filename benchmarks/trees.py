"""Two source trees in one benchmark run: a base revision's ``src/`` (exported with ``git archive``) and this
tree's, each run as the console script (:data:`CONSOLE`) in fresh processes with its own ``PYTHONPATH`` (and one
BLAS thread, as the console script sets)."""

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `cevnsfit ...` as installed (the console script runs cevnsfit.entry:main), from the tree on PYTHONPATH: what a user
# times, exit included (`python -m cevnsfit.cli` skips the entry's end-of-run work)
CONSOLE = [sys.executable, "-c", "import sys; from cevnsfit.entry import main; sys.argv[0] = 'cevnsfit'; main()"]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO, check=True).stdout.strip()


@contextlib.contextmanager
def base_and_this(base: str | None):
    """{label: src folder} of the base revision (default: where HEAD left main) and of this tree."""
    base = base or git("merge-base", "main", "HEAD")
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", base, "src"], capture_output=True, cwd=REPO, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield {f"base {git('rev-parse', '--short', base)}": Path(tmp) / "src",
               f"this tree (HEAD {git('rev-parse', '--short', 'HEAD')} + changes)": REPO / "src"}


def env(src: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(src), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}
