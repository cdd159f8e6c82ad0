"""The limits as a HEPData submission (``cevnsfit limits --hepdata DIR``, ``hepdata/`` of ``cevnsfit reproduce``),
made with ``hepdata_lib`` and checked with ``hepdata_validator`` before it is put in place.

Tables (one YAML file each, listed in ``submission.yaml``):

* ``Limits <data set>``: one row per model (independent variable ``model``); dependent variables the upper limit on
  the coupling g for M -> 0 (dimensionless) and on g/M for M -> inf [GeV^-1], the sign-flip islands of both lines,
  and, where Feldman-Cousins results exist (``reproduce --fc``), the FC limits with their toy error and the
  one-parameter Wilks limits of the same lines;
* ``Contour <model> <data set>``: independent variable the mediator mass M [MeV]; dependent variables the upper
  limit on g at each mass (edge of the allowed interval that contains g = 0) and the edges of the sign-flip
  islands (allowed intervals above it).

Every dependent variable carries the qualifiers ``CL`` (``2 sigma``), ``method`` (Wilks 2 dof: Delta chi^2 = 6.18
from the global minimum, or 1 dof: 4 at fixed mass; Feldman-Cousins with its number of toys), ``data set`` and
``model``.  A value ``-`` means no value: no finite limit (the allowed interval that contains g = 0 reaches the end
of the scanned couplings, or g = 0 itself is excluded), no island at that mass, or an island edge beyond the
scanned couplings.

The layer knows nothing of experiments: the caller passes the rows of ``cevnsfit limits --json`` and the data sets'
labels.  Written atomically: the tables go to a hidden folder beside the target, are validated there and the folder
is renamed into place; a failure removes it and leaves any previous submission at the target untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError, OutputError
from ..process import check_interrupted
from .atomic import PART_MARK, signals_held

__all__ = ["check_hepdata_dir", "write_submission", "write_tables", "validate", "submission_tables",
           "submission_files", "limits_table", "contour_table", "wilks_method", "MISSING", "CL_LABEL"]

MISSING = "-"
"""HEPData's "no value": no finite limit, no island at that mass, or an edge beyond the scanned couplings."""
CL_LABEL = "2 sigma"
"""The confidence level qualifier of every limit in the submission."""
OLD_MARK = ".old-"
SUBMISSION_FILE = "submission.yaml"
INSTALL_HINT = "a dependency of cevnsfit: pip install hepdata-lib"
# (row key, variable name, units, islands key, islands name) of the two asymptotic limits
ASYMPTOTIC = (("g_low_mass", "g upper limit (M -> 0)", "", "low_mass_islands", "allowed islands of g (M -> 0)"),
              ("g_over_M_high_mass", "g/M upper limit (M -> inf)", "GeV^-1", "high_mass_islands",
               "allowed islands of g/M (M -> inf)"))


def _hepdata_lib():
    try:
        import hepdata_lib
    except ImportError:
        raise InputError(f"--hepdata needs the package hepdata_lib ({INSTALL_HINT})") from None
    return hepdata_lib


def check_hepdata_dir(path: str | os.PathLike) -> Path:
    """Check, before any work, that a HEPData submission can be written to the folder ``path``: hepdata_lib is
    installed, the parent folder exists and is writable, and ``path`` is absent, an empty folder or a previous
    submission (a folder with ``submission.yaml``), which is replaced.  :class:`InputError` (exit 2) otherwise."""
    _hepdata_lib()
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise InputError(f"--hepdata needs a folder name, got '{path}'")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write the HEPData submission {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write the HEPData submission {path}: folder {parent} is not writable")
    if path.exists() or path.is_symlink():
        if not path.is_dir() or path.is_symlink():
            raise InputError(f"cannot write the HEPData submission {path}: it exists and is not a folder")
        if any(path.iterdir()) and not (path / SUBMISSION_FILE).is_file():
            raise InputError(f"cannot write the HEPData submission {path}: it is a folder with other files (no "
                             f"{SUBMISSION_FILE}); give a new or empty folder")
    return path


def _value(x):
    return MISSING if x is None else float(x)


def _islands_text(islands) -> str:
    if not islands:
        return MISSING
    return "; ".join(f"[{_fmt(a)}, {_fmt(b)}]" for a, b in islands)


def _fmt(x) -> str:
    return "open" if x is None else f"{x:.4g}"


def _table_name(text: str) -> str:
    """A table name that is also a safe file name (hepdata_lib names the file after the table)."""
    return re.sub(r"[^\w+\-.() ]", "_", text)


def _qualify(var, cl_method: str, dataset: str, model: str | None = None) -> None:
    var.add_qualifier("CL", CL_LABEL)
    var.add_qualifier("method", cl_method)
    var.add_qualifier("data set", dataset)
    if model is not None:
        var.add_qualifier("model", model)


def wilks_method(convention: dict) -> str:
    """The method qualifier of a Wilks limit, from the document's ``convention`` (``limits --json``)."""
    return (f"Wilks, {convention['dof']} dof: Delta chi^2 = {convention['delta_chi2']:g} from the "
            f"{'global minimum over the (M, g) plane' if convention['dof'] == 2 else 'minimum at fixed mass'}")


def _limit_table(lib, name: str, location: str, description: str):
    """An empty hepdata_lib table of limits, with the keywords every table of the submission shares."""
    table = lib.Table(_table_name(name))
    table.description = description
    table.location = location
    table.keywords["observables"] = ["LIMIT"]
    table.keywords["phrases"] = ["CEvNS", "Light mediator", "Exclusion limit"]
    return table


def limits_table(dataset: str, label: str, rows: list[dict], convention: dict, fc_toys: int | None = None):
    """The ``Limits <label>`` table of one data set: a row per model, the asymptotic limits (and FC columns)."""
    lib = _hepdata_lib()
    method = wilks_method(convention)
    table = _limit_table(lib, f"Limits {label}", "cevnsfit limits",
                         f"{CL_LABEL} upper limits on the coupling g of a light mediator for M -> 0 and on g/M "
                         f"[GeV^-1] for M -> inf (contact limit), {label}; {method}. Islands: allowed sign-flip "
                         f"intervals above the limit ('open': beyond the scanned couplings). '-': no finite limit.")
    model = lib.Variable("model", is_independent=True, is_binned=False, values=[r["model"] for r in rows])
    table.add_variable(model)
    for key, name, units, islands_key, islands_name in ASYMPTOTIC:
        var = lib.Variable(name, is_independent=False, is_binned=False, units=units,
                           values=[_value(r[key]) for r in rows])
        var.digits = 6
        _qualify(var, method, label)
        table.add_variable(var)
        islands = lib.Variable(islands_name, is_independent=False, is_binned=False, units=units,
                               values=[_islands_text(r.get(islands_key)) for r in rows])
        _qualify(islands, method, label)
        table.add_variable(islands)
    if fc_toys is not None and any("fc" in r for r in rows):
        _fc_variables(lib, table, rows, label, fc_toys)
    return table


def _fc_variables(lib, table, rows: list[dict], label: str, fc_toys: int) -> None:
    fc_method = f"Feldman-Cousins (Neyman construction, {fc_toys} toys per tested coupling), one parameter"
    wilks_1 = "Wilks, 1 dof: Delta chi^2 = 4 from the minimum along the line"
    for key, name, units, _, _ in ASYMPTOTIC:
        cells = [r.get("fc", {}).get(key, {}) for r in rows]
        fc = lib.Variable(f"{name}, FC", is_independent=False, is_binned=False, units=units,
                          values=[_value(c.get("fc")) for c in cells], zero_uncertainties_warning=False)
        fc.digits = 6
        err = lib.Uncertainty("toy statistics", is_symmetric=True)
        err.values = [0.0 if c.get("toy_error") is None else float(c["toy_error"]) for c in cells]
        fc.add_uncertainty(err)
        _qualify(fc, fc_method, label)
        table.add_variable(fc)
        w = lib.Variable(f"{name}, Wilks 1 dof", is_independent=False, is_binned=False, units=units,
                         values=[_value(c.get("wilks_1par")) for c in cells])
        w.digits = 6
        _qualify(w, wilks_1, label)
        table.add_variable(w)


def contour_table(row: dict, label: str, convention: dict):
    """The ``Contour <model> <label>`` table: the upper limit on g and the islands at every mass [MeV]."""
    lib = _hepdata_lib()
    contour = row["contour"]
    method = wilks_method(convention)
    table = _limit_table(lib, f"Contour {row['model']} {label}", "cevnsfit limits (contour)",
                         f"{CL_LABEL} upper limit on the coupling g of the {row['model']} mediator as a function of "
                         f"its mass M, {label}; {method}. Islands: allowed sign-flip intervals above the limit. "
                         f"'-': no value (no finite limit, no island, or an edge beyond the scanned couplings).")
    mass = lib.Variable("M", is_independent=True, is_binned=False, units="MeV",
                        values=[float(m) for m in contour["mass_mev"]])
    mass.digits = 6
    table.add_variable(mass)
    g = lib.Variable("g upper limit", is_independent=False, is_binned=False,
                     values=[_value(x) for x in contour["g_upper"]])
    g.digits = 6
    _qualify(g, method, label, row["model"])
    table.add_variable(g)
    islands = contour.get("islands") or [[] for _ in contour["mass_mev"]]
    for k in range(max((len(i) for i in islands), default=0)):
        for edge, which in ((0, "lower"), (1, "upper")):
            var = lib.Variable(f"island {k + 1} {which} edge g", is_independent=False, is_binned=False,
                               values=[_value(i[k][edge]) if len(i) > k else MISSING for i in islands])
            var.digits = 6
            _qualify(var, method, label, row["model"])
            table.add_variable(var)
    return table


def _file_name(table_name: str) -> str:
    return table_name.lower().replace(" ", "_") + ".yaml"  # as hepdata_lib's Table.write_yaml names it


def submission_files(models, datasets, labels: dict[str, str]) -> list[str]:
    """The file names of a submission of these models (names) and data sets (keys): what
    :func:`write_tables` writes, for the checks of an output folder before the work."""
    names = [SUBMISSION_FILE]
    for d in datasets:
        label = labels.get(d, d)
        names.append(_file_name(_table_name(f"Limits {label}")))
        names += [_file_name(_table_name(f"Contour {m} {label}")) for m in models]
    return names


def submission_tables(rows: list[dict], convention: dict, labels: dict[str, str], fc_toys: int | None = None) -> list:
    """Every table of the submission: per data set (in the rows' order) its limits table, then a contour per model.
    ``labels``: data set -> its printed name (a data set without one is printed as its key)."""
    by_dataset: dict[str, list] = {}
    for r in rows:
        by_dataset.setdefault(r["dataset"], []).append(r)
    tables = []
    for dataset, drows in by_dataset.items():
        label = labels.get(dataset, dataset)
        tables.append(limits_table(dataset, label, drows, convention, fc_toys))
        tables += [contour_table(r, label, convention) for r in drows if r.get("contour")]
    names = [_file_name(t.name) for t in tables]
    if len(set(names)) != len(names):
        raise InputError("two tables of the HEPData submission would share a file name (data sets or models whose "
                         "names differ only in case or punctuation)")
    return tables


def write_tables(folder: str | os.PathLike, rows: list[dict], convention: dict, labels: dict[str, str],
                 comment: str = "", fc_toys: int | None = None) -> list[str]:
    """Write the submission into the existing empty ``folder`` (``submission.yaml`` and one YAML file per table)
    and validate it; returns the file names.  Not atomic by itself: :func:`write_submission` is, and the run
    folder of ``cevnsfit reproduce`` stages it."""
    import yaml

    lib = _hepdata_lib()
    folder = Path(folder)
    submission = lib.Submission()
    submission.comment = comment
    for table in submission_tables(rows, convention, labels, fc_toys):
        submission.add_table(table)
    # hepdata_lib's Submission.create_files also writes an archive into the working directory: the header document
    # is written here as it writes it, then each table appends its entry to submission.yaml
    header = {"data_license": submission.get_license(), "comment": submission.comment,
              "additional_resources": submission.additional_resources}
    (folder / SUBMISSION_FILE).write_text(yaml.dump(header, default_flow_style=False, explicit_start=True),
                                          encoding="utf-8")
    for table in submission.tables:
        table.write_output(str(folder))
    problems = validate(folder)
    if problems:
        raise OutputError(f"the HEPData submission written to {folder} is not valid: {problems[0]}")
    return sorted(p.name for p in folder.iterdir())


def validate(folder: str | os.PathLike) -> list[str]:
    """Problems hepdata_validator finds in the submission in ``folder`` (offline, no remote schema): [] if valid."""
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

    validator = FullSubmissionValidator(autoload_remote_schemas=False)
    if validator.validate(directory=str(folder)):
        return []
    return [f"{Path(name).name}: {m.message}" for name, messages in validator.get_messages().items()
            for m in messages]


def write_submission(path: str | os.PathLike, rows: list[dict], convention: dict, labels: dict[str, str],
                     comment: str = "", fc_toys: int | None = None) -> Path:
    """Write the submission to the folder ``path`` atomically: into a hidden folder beside it, validated, then
    renamed into place (a previous submission there is replaced whole).  On any failure nothing is left at
    ``path`` but what was there before.  Check ``path`` with :func:`check_hepdata_dir` before the work."""
    path = check_hepdata_dir(path)
    parent = path.parent
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{path.name}{PART_MARK}", dir=parent))
    except OSError as exc:
        raise OutputError(f"cannot write the HEPData submission {path}: {exc.strerror or exc}") from None
    old = None
    try:
        os.chmod(stage, 0o777 & ~_umask())
        write_tables(stage, rows, convention, labels, comment, fc_toys)
        with signals_held():
            check_interrupted()
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}{OLD_MARK}", dir=parent))
                os.replace(path, old / path.name)
            os.replace(stage, path)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None and (old / path.name).exists() and not path.exists():
            os.replace(old / path.name, path)  # put the previous submission back
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
