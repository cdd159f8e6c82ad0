"""The README's Python examples run as written (documentation that cannot silently go stale)."""

import re
from pathlib import Path

import pytest

# executes the README's examples (a full analysis): slow lane
pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_execute():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    ns: dict = {}
    for code in blocks:
        exec(compile(code, str(README), "exec"), ns)  # noqa: S102 -- our own README
    # the values the README's comments promise
    assert ns["sm_csi"].shape == (9, 11)
    # SM chi^2 of both data sets: about one per bin (99 CsI + 120 LAr bins)
    assert 180 < ns["chi2"] < 260
    assert ns["row"]["dataset"] == "csi+lar"
    assert ns["gm2_verdict"](ns["res"], "csi+lar", "2021")["verdict"] == "allowed"
