"""Self-describing result files: (M, g) scans as NetCDF (xarray, netCDF3 through scipy) and JSON documents.

Every file records the model and its charges, the data set, the software version, the confidence-level
convention and the SHA-256 of every data file used.  Writes are atomic (temporary name, then rename).
"""

from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from .. import __version__
from ..errors import DataError, InputError
from .atomic import atomic_path
from .datadir import sha256


def data_checksums(experiments) -> dict:
    """{relative path: sha256} of every file the experiments read."""
    out = {}
    for exp in experiments:
        for path in exp.paths.values():
            rel = path.relative_to(exp.data_dir).as_posix()
            out[rel] = sha256(path)
    return dict(sorted(out.items()))


def model_attrs(model) -> dict:
    charges = getattr(model, "charges", None)
    attrs = {"model": model.name, "model_kind": getattr(model, "kind", "vector")}
    if charges is not None:
        attrs["charges_u_d_e_mu_tau"] = ",".join(f"{c:.12g}" for c in charges)
    return attrs


def scan_dataset(grid, dataset: str, contour: dict, experiments, extra_attrs: dict | None = None) -> xr.Dataset:
    """The scan of one model and data set as an xarray Dataset (Delta chi^2 relative to the plane's minimum)."""
    chi, chi_sm = grid.dataset_chi2(dataset)
    chi_min = min(float(chi.min()), chi_sm, float(contour["chi2_min"]))
    ds = xr.Dataset(
        {
            "chi2": (("mass_mev", "coupling"), chi, {"long_name": "profiled chi^2", "units": "1"}),
            "delta_chi2": (("mass_mev", "coupling"), chi - chi_min, {"long_name": "chi^2 - chi^2_min (global minimum of the plane and the M = 0, inf lines; g = 0 included)", "units": "1"}),
            "g_upper": (("mass_mev",), contour["g_upper"], {"long_name": "upper edge of the allowed interval containing g = 0", "units": "1", "cl": contour["cl"]}),
        },
        coords={
            "mass_mev": ("mass_mev", grid.masses_mev, {"units": "MeV", "long_name": "mediator mass"}),
            "coupling": ("coupling", grid.couplings, {"units": "1", "long_name": "coupling g"}),
        },
        attrs={
            "title": f"cevnsfit (M, g) scan: {grid.model.name}, {dataset}",
            "dataset": dataset,
            "chi2_sm": chi_sm,
            "chi2_min": chi_min,
            "software": f"cevnsfit {__version__}",
            "contour_cl": contour["cl"],
            "contour_islands": json.dumps([[list(iv) for iv in row] for row in contour["islands"]]),
            **model_attrs(grid.model),
            "data_sha256": json.dumps(data_checksums(experiments)),
            **(extra_attrs or {}),
        },
    )
    return ds


def write_netcdf(ds: xr.Dataset, out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".nc", ".netcdf"):
        raise InputError(f"scan output must be a NetCDF file (.nc), got '{out.name}'")
    with atomic_path(out) as tmp:
        ds.to_netcdf(tmp, engine="scipy")
    return out


def read_netcdf(path: str | Path) -> xr.Dataset:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"scan file not found: {path}")
    try:
        with xr.open_dataset(path, engine="scipy") as ds:
            return ds.load()
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a readable cevnsfit scan ({exc})") from None
