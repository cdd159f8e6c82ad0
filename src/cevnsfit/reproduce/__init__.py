"""``cevnsfit reproduce``: the paper's tables, figures, scans and a report from one call (:func:`reproduce`).

* :mod:`.pipeline` -- what is computed (models x data sets: grids, limits, scans, verdicts) and in which order;
* :mod:`.grids` -- a model's grids: the full (M, g) plane and the coarse one of the costlier experiments;
* :mod:`.cache` -- the grid cache (keys, save, load);
* :mod:`.report` -- the limits tables (md, tex, csv, json), the verdicts and report.md;
* :mod:`.figures` -- the figures, drawn by forked worker processes while the run computes;
* the run-folder transaction (lock, staging folder, commit, roll-forward) is :mod:`cevnsfit.io.runfolder`.
"""

from ..io.runfolder import BusyError
from .cache import cache_key, physics_inputs_hash
from .pipeline import GM2_EPOCHS, LOCK_NAME, SM_EXPERIMENTS, planned_outputs, reproduce

__all__ = ["reproduce", "cache_key", "physics_inputs_hash", "planned_outputs", "BusyError", "LOCK_NAME",
           "SM_EXPERIMENTS", "GM2_EPOCHS"]
