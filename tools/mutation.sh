#!/usr/bin/env bash
# Mutation testing of the physics core with mutmut 2 (pip install -e '.[dev]').
#
#   tools/mutation.sh [MODULE ...]      e.g. tools/mutation.sh physics/cross_section.py stats/chi2.py
#
# Each module (path under src/cevnsfit/) is mutated in turn and every mutant is run against a *fast* selection of
# tests that exercise it (-x: the first failure kills the mutant).  Results accumulate in .mutmut-cache; see them
# with `mutmut results` and `mutmut show ID`.  mutmut edits the source file in place and restores it; the script
# refuses to run on a file with uncommitted changes and restores it from git on exit, whatever happens.
# Score and survivors of the last run: docs/validation.md, "Mutation testing".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MUTMUT=${MUTMUT:-.venv/bin/mutmut}

# fast test selection per module (the slow lane is not needed to kill a mutant of these)
declare -A TESTS=(
  [physics/cross_section.py]="tests/test_physics_core.py tests/test_reference_mediators.py::test_cross_section_functions_equal_reference"
  [physics/models.py]="tests/test_models.py tests/test_reference_mediators.py"
  [physics/form_factors.py]="tests/test_physics_core.py tests/test_reference_integration.py"
  [templates.py]="tests/test_reference_mediators.py tests/test_mediators.py::test_templates_equal_direct_path tests/test_mediators.py::test_zero_coupling_is_the_standard_model tests/test_mediators.py::test_scalar_does_not_depend_on_sign tests/test_mediators.py::test_heavy_zprime_is_vector_nsi"
  [response.py]="tests/test_reference_integration.py tests/test_reference_mediators.py"
  [stats/chi2.py]="tests/test_chi2.py tests/test_chi2_bruteforce.py"
  [stats/intervals.py]="tests/test_mediators.py tests/test_chi2.py"
  [sources/spectra.py]="tests/test_physics_core.py tests/test_reference_integration.py"
  [sources/timing.py]="tests/test_reference_integration.py"
  [experiments/common.py]="tests/test_reference_integration.py tests/test_reference_mediators.py"
)
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(physics/cross_section.py templates.py stats/chi2.py)

for mod in "${modules[@]}"; do
  path="src/cevnsfit/$mod"
  tests=${TESTS[$mod]:-}
  [ -n "$tests" ] || { echo "no test selection for $mod (add it to TESTS)" >&2; exit 2; }
  git diff --quiet -- "$path" || { echo "$path has uncommitted changes: commit or stash them first" >&2; exit 2; }
  trap 'git checkout -- "$path"' EXIT
  echo "== $mod  ($tests)"
  "$MUTMUT" run --paths-to-mutate "$path" --tests-dir tests \
    --runner "$PY -m pytest -x -q -p no:cacheprovider -m 'not slow' $tests" || true
  git checkout -- "$path"
  trap - EXIT
done
"$MUTMUT" results || true
