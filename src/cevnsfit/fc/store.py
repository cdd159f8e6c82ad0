"""The resumable store of an FC run (``DIR/store``): ``manifest.json`` (the inputs of every line: grids, seed, block
size, construction, data checksums, version) and one ``.npz`` per finished task, written atomically as it arrives.
A rerun computes only the missing tasks; a store made with other inputs is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path, check_writable_dir, stale_temporaries
from ..io.jsonio import json_text
from .construction import LineSpec


class Store:
    """Finished tasks of every line under ``root``: manifest.json + LINE/pPOINT_bBLOCK_nN.npz."""

    def __init__(self, root: Path):
        self.root = check_writable_dir(Path(root))
        self.manifest_path = self.root / "manifest.json"
        # temporary files of writes cut short (kill -9 between write and rename): never read, removed here
        for tmp in stale_temporaries(self.root):
            tmp.unlink(missing_ok=True)
        self.lines = {}
        if self.manifest_path.exists():
            try:
                self.lines = json.loads(self.manifest_path.read_text())["lines"]
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{self.manifest_path} is not a cevnsfit fc manifest; use another --out") from None

    def register(self, spec: LineSpec, inputs: dict) -> None:
        """Accept ``spec`` if new or made with the same inputs; refuse a store made with other inputs."""
        old = self.lines.get(spec.name)
        if old is not None and old != json.loads(json_text(inputs)):
            diff = sorted(k for k in set(old) | set(inputs) if old.get(k) != json.loads(json_text(inputs)).get(k))
            raise InputError(f"the store {self.root} holds {spec.name} computed with other inputs (differs in: "
                             f"{', '.join(diff)}); use another --out or delete it")
        if old is None:
            self.lines[spec.name] = inputs
            with atomic_path(self.manifest_path) as tmp:
                Path(tmp).write_text(json_text({"format": "cevnsfit-fc-store-1", "lines": self.lines}))
        (self.root / spec.name).mkdir(exist_ok=True)

    def path(self, spec: LineSpec, point: int, block: int, n: int) -> Path:
        return self.root / spec.name / f"p{point:04d}_b{block:05d}_n{n}.npz"

    def load(self, spec: LineSpec, point: int, block: int, n: int) -> np.ndarray | None:
        p = self.path(spec, point, block, n)
        if not p.exists():
            return None
        with np.load(p) as f:
            return f["t"]

    def save(self, spec: LineSpec, point: int, block: int, t: np.ndarray) -> None:
        with atomic_path(self.path(spec, point, block, t.size)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, t=t, coupling=spec.tested[point], block=block)

