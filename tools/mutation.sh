#!/usr/bin/env bash
# Mutation testing of the physics core with mutmut 2 (pip install -e '.[dev]'; `coverage` optional, it skips runs of
# mutants on lines the fast selection never executes).  The work is done by tools/mutation.py (see its docstring);
# this wrapper runs it at the lowest CPU priority with the project's interpreter.
#
#   tools/mutation.sh                                   every mutant of every module in TESTS (hours)
#   tools/mutation.sh physics/cross_section.py          every mutant of one module
#   tools/mutation.sh --sample 25 --seed 14             a seeded random sample of 25 mutants per module
#   PYTHON=/path/to/python tools/mutation.sh ...        another interpreter (mutmut importable from it)
#
# Results accumulate in .mutmut-cache: `mutmut results`, `mutmut show ID`, `mutmut apply ID` (then `git checkout`).
# The script refuses a module with uncommitted changes and always restores it.  Score and survivors of the last
# run: docs/validation/tests.md, "Mutation testing".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec nice -n 19 "$PY" tools/mutation.py --python "$PY" "$@"
