"""Frequentist (Neyman / Feldman-Cousins) limits on the two asymptotic lines, with toys, serially or on Dask.

* :mod:`.construction` -- the lines (:class:`LineSpec`), their observed side (:func:`observe`, :func:`choose_grids`)
  and one task of toys (:func:`run_task`);
* :mod:`.store` -- the resumable store of finished tasks (:class:`Store`);
* :mod:`.backends` -- where the tasks run: serially or on Dask (:class:`DaskSession`);
* :mod:`.pipeline` -- :func:`run_fc`: the lines built, the missing toys run, the fc.json document returned;
* :mod:`.report` -- fc.json, fc.md, fc.csv, the raster figure and the FC columns of ``cevnsfit reproduce --fc``.

Composition layer, like :mod:`cevnsfit.mediators`: the observed side is the asymptotic path itself; the toys come
from :mod:`cevnsfit.stats.toys`.  Every task draws from its own ``SeedSequence``, so the numbers are identical
whatever runs them, in whatever order, after whatever restart.
"""

from .backends import BACKENDS, DaskSession
from .construction import (DEFAULT_BLOCK, POINTS_PER_DECADE, REGIMES, LineSpec, Observed, build_line, choose_grids,
                           line_mass, observe, parse_masses, run_task, toy_data_sets, without_replicas)
from .construction import _analysis, _lattice  # noqa: F401 - the tests' and benchmarks' handles
from .pipeline import LineResult, run_fc, run_fc_to_folder
from .report import (FC_KEYS, csv_text, fc_columns_markdown, markdown, raster_figure, with_fc_columns,
                     write_reports)
from .store import Store

__all__ = ["run_fc", "run_fc_to_folder", "toy_data_sets", "write_reports", "LineSpec", "Store", "run_task", "observe",
           "choose_grids", "REGIMES", "BACKENDS", "DaskSession", "parse_masses", "line_mass", "raster_figure",
           "with_fc_columns", "fc_columns_markdown", "markdown", "csv_text", "build_line", "without_replicas", "LineResult",
           "Observed", "DEFAULT_BLOCK", "POINTS_PER_DECADE", "FC_KEYS"]
