"""Reader fuzzing (issue 8, item 6): hypothesis damages real release files (swapped columns, duplicated or moved
rows, negative or fractional counts, garbage bytes, truncation) and every reader must answer with ``DataError``,
never another exception; targeted damage must be refused (not silently binned) with the line named."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cevnsfit.errors import DataError
from cevnsfit.experiments.csi2021 import _binned_pdf, _time_pdf
from cevnsfit.experiments.lar2020 import E_EDGES_KEVEE, read_3d, read_efficiency
from cevnsfit.io.datadir import resolve_data_dir
from cevnsfit.limits.darkcast import read_lmt
from cevnsfit.limits.foresee import read_foresee
from cevnsfit.parameters import DEFAULT

DATA = resolve_data_dir()
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
CSI_T_EDGES = (0.0, 0.125, 0.25, 0.5, 1.0, 6.0)

# reader name -> (release file, function reading a path)
READERS = {
    "lar_data": ("lar2020/datanobkgsub.txt", lambda p: read_3d(p, counts=True)),
    "lar_pdf": ("lar2020/brnpdf.txt", read_3d),
    "lar_efficiency": ("lar2020/CENNS10AnlAEfficiency.txt", lambda p: read_efficiency(p, 0.963)),
    "csi_pe": ("csi2021/brnPE.txt", lambda p: _binned_pdf(p, E_EDGES_KEVEE)),
    "csi_time": ("csi2021/ninTrec.txt", lambda p: _time_pdf(p, CSI_T_EDGES, (0.0, 6.0), None)),
}
LIMIT_FILES = {
    "darkcast": (next((DATA.parent / "limits").rglob("*.lmt"), None), read_lmt),
    "foresee": (next((DATA.parent / "limits").rglob("FORESEE/Models/U1B-L/model/lines/bounds_*.txt"), None), read_foresee),
}


def data_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines()) if line.strip() and not line.lstrip().startswith("#")]


def damage(lines: list[str], rows: list[int], draw) -> tuple[list[str], int, str]:
    """One damage of a table: (new lines, 0-based index of the first line that changed, kind)."""
    kind = draw(st.sampled_from(["swap", "duplicate", "move", "negative", "fraction"]))
    i = draw(st.sampled_from(rows[1:-1]))
    parts = lines[i].split()
    out = list(lines)
    if kind == "swap":
        a, b = draw(st.sampled_from([(0, len(parts) - 1), (0, 1)]))
        parts[a], parts[b] = parts[b], parts[a]
        out[i] = " ".join(parts)
    elif kind == "duplicate":
        out.insert(i + 1, lines[i])
        i += 1
    elif kind == "move":
        j = draw(st.sampled_from([r for r in rows[1:-1] if abs(r - i) > 1]))
        out.insert(j, out.pop(i))
        i = min(i, j)
    elif kind == "negative":
        parts[-1] = "-" + draw(st.sampled_from(["1", "2.5", "1e-3"]))
        out[i] = " ".join(parts)
    else:
        parts[-1] = str(float(parts[-1]) + 0.5)
        out[i] = " ".join(parts)
    return out, i, kind


def harmless(reader: str, kind: str, old: str, new: str) -> bool:
    """Damage that no check can see: the changed line reads the same, or a fractional value where fractions are
    legitimate (release pdfs, efficiencies, densities)."""
    if [float(x) for x in old.split()] == [float(x) for x in new.split()]:
        return True
    return kind == "fraction" and reader != "lar_data"


@pytest.mark.parametrize("reader", list(READERS))
@SETTINGS
@given(data=st.data())
def test_targeted_damage_is_refused_with_the_line(tmp_path_factory, reader, data):
    rel, read = READERS[reader]
    text = (DATA / rel).read_text()
    lines = text.splitlines()
    new, i, kind = damage(lines, data_lines(text), data.draw)
    if harmless(reader, kind, lines[i] if i < len(lines) else "", new[i]) and kind in ("swap", "fraction", "negative"):
        return
    path = tmp_path_factory.mktemp("fuzz") / Path(rel).name
    path.write_text("\n".join(new) + "\n")
    with pytest.raises(DataError) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message
    m = re.search(r"line (\d+):", message)
    assert m, message
    # the named line is the damaged one, or the first row after it that no longer fits the sequence
    assert i + 1 <= int(m.group(1)) <= i + 2, (kind, i + 1, message)


@pytest.mark.parametrize("reader", list(READERS) + list(LIMIT_FILES))
@SETTINGS
@given(data=st.data())
def test_random_damage_gives_data_error_or_a_valid_result(tmp_path_factory, reader, data):
    """Arbitrary byte-level damage (garbage, truncation, deleted characters): DataError or a result, nothing else."""
    if reader in LIMIT_FILES:
        path0, read = LIMIT_FILES[reader]
        if path0 is None:
            pytest.skip("limit files not found")
    else:
        rel, read = READERS[reader]
        path0 = DATA / rel
    raw = path0.read_bytes()
    op = data.draw(st.sampled_from(["truncate", "insert", "delete", "replace"]))
    at = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(min_size=1, max_size=12) | st.sampled_from([b"nan", b"inf", b"-", b"1e999", b"\x00", b" 7 "]))
    if op == "truncate":
        raw = raw[:at]
    elif op == "insert":
        raw = raw[:at] + junk + raw[at:]
    elif op == "delete":
        raw = raw[:at] + raw[at + len(junk):]
    else:
        raw = raw[:at] + junk + raw[at + len(junk):]
    path = tmp_path_factory.mktemp("fuzz") / path0.name
    path.write_bytes(raw)
    try:
        result = read(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    if isinstance(result, np.ndarray):  # what a reader returns must be usable numbers
        assert np.all(np.isfinite(result)) and np.all(result >= 0)
    elif hasattr(result, "lower"):  # a LimitCurve
        assert not np.any(result.lower < 0)
    elif result is not None and hasattr(result, "values"):
        assert np.all(np.isfinite(result.values)) and math.isfinite(float(result.values.sum()))
