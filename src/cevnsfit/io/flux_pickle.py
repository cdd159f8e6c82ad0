"""The SNS flux grids from the pinned upstream ``flux_dict.pkl``, read without running any code.

Upstream (``BarbeauGroup/chi2_pull_test``, ``flux/flux_dict.pkl``; ``shared/data/coherent/PROVENANCE.md`` §4a)
is a numpy ``.npy`` file holding one pickled ``dict`` of numpy arrays.  Unpickling can call any importable
function, so this module never uses :func:`pickle.load` or ``np.load(allow_pickle=True)``: the ``.npy`` header is
parsed by numpy's format reader and the pickle stream by :class:`RestrictedUnpickler`, which resolves only the
globals numpy needs to rebuild arrays.  The caller verifies the file's SHA-256 before calling :func:`read_pickle`.

The conversion writes the lossless ``.npz`` used by the experiments (keys and shapes in the module docstrings of
the two converters) with :func:`numpy.savez`, whose archive has fixed time stamps: the output is reproducible
byte for byte, and it equals ``shared/data/coherent/flux/.../flux_dict_converted.npz`` (tested).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["RestrictedUnpickler", "read_pickle", "convert_2d", "convert_1d", "FLAVOURS", "CONVERTERS"]

FLAVOURS = ("nuE", "nuEBar", "nuMu", "nuMuBar", "nuTau", "nuTauBar", "nuS", "nuSBar")
"""The flavour keys of COHERENT's flux pickle, in its order."""

# The only globals a pickled numpy array (protocols 2-5, numpy 1.x or 2.x module paths) refers to: array and
# scalar constructors, and ``_codecs.encode``, which protocol 2 uses to turn the array's str payload into bytes.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits numpy arrays, numpy scalars and builtin containers only.

    Builtin containers (dict, list, tuple, str, bytes, numbers) are pickle opcodes and need no global; any other
    global -- ``os.system``, ``builtins.eval``, a class of any module -- raises :class:`DataError`.
    """

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise DataError(f"refusing to unpickle global '{module}.{name}': only numpy arrays and builtin containers "
                        "are admitted")


def read_pickle(path: Path):
    """The object in the ``.npy``-wrapped pickle at ``path`` (an object array of shape ()), or a bare pickle."""
    raw = Path(path).read_bytes()
    fh = io.BytesIO(raw)
    try:
        if raw[:6] == b"\x93NUMPY":
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(fh, max_header_size=10_000)
            else:
                np.lib.format.read_array_header_2_0(fh, max_header_size=10_000)
        obj = RestrictedUnpickler(fh).load()
    except DataError:
        raise
    except Exception as exc:  # any malformed stream: a data error naming the file, never a traceback
        raise DataError(f"{path}: not a readable flux pickle ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict of flavours, found {type(obj).__name__}")
    return obj


def _arr(x, path, what) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {what} is not numeric") from None
    return a


def convert_2d(obj: dict, path: Path = Path("flux_dict.pkl")) -> dict[str, np.ndarray]:
    """125-ns 2-D grid: per flavour ``((t_edges_ns, E_labels_MeV), H)`` with H of shape (time, energy) in
    neutrinos per POT per bin -> ``t_edges_ns``, one (time, energy) array per flavour, ``E_bin_label_MeV``."""
    try:
        (t_edges, e_labels), _ = obj[FLAVOURS[0]]
        out = {"t_edges_ns": _arr(t_edges, path, "t_edges")}
        for fl in FLAVOURS:
            (t_f, e_f), h = obj[fl]
            if not (np.array_equal(_arr(t_f, path, fl), out["t_edges_ns"]) and np.array_equal(_arr(e_f, path, fl), _arr(e_labels, path, fl))):
                raise DataError(f"{path}: flavour {fl} has axes different from {FLAVOURS[0]}")
            out[fl] = _arr(h, path, fl)
        out["E_bin_label_MeV"] = _arr(e_labels, path, "E labels")
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not the 2-D flux layout ({type(exc).__name__}: {exc})") from None
    return out


def convert_1d(obj: dict, path: Path = Path("flux_dict.pkl")) -> dict[str, np.ndarray]:
    """10-ns projections: per flavour ``{'energy': (E_labels_MeV, nu/POT per 1-MeV bin), 'time': (t_edges_ns,
    PDF)}`` -> ``t_edges_ns``, ``<flavour>_energy_nu_per_POT``, ``<flavour>_time_pdf``, ``E_bin_label_MeV``."""
    try:
        e_labels, _ = obj[FLAVOURS[0]]["energy"]
        t_edges, _ = obj[FLAVOURS[0]]["time"]
        out = {"t_edges_ns": _arr(t_edges, path, "t_edges")}
        for fl in FLAVOURS:
            out[f"{fl}_energy_nu_per_POT"] = _arr(obj[fl]["energy"][1], path, fl)
            out[f"{fl}_time_pdf"] = _arr(obj[fl]["time"][1], path, fl)
        out["E_bin_label_MeV"] = _arr(e_labels, path, "E labels")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{path}: not the 1-D flux layout ({type(exc).__name__}: {exc})") from None
    return out


CONVERTERS = {"convert_2d": convert_2d, "convert_1d": convert_1d}
"""The flux grid converters the restricted unpickler allows: name -> function."""


def convert_file(converter: str, source: Path, target: Path) -> None:
    """Read the pickle ``source`` (already hash-checked) and write the ``.npz`` ``target`` (plain path: the caller
    makes it atomic)."""
    arrays = CONVERTERS[converter](read_pickle(source), source)
    with open(target, "wb") as fh:
        np.savez(fh, **arrays)
