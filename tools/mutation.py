"""Mutation testing of the physics core with mutmut 2: all mutants of a module, or a seeded random sample of them.

    python tools/mutation.py [--sample N] [--seed S] [--rerun] [MODULE ...]   (MODULE: path under src/cevnsfit/)

Usually started through ``tools/mutation.sh`` (which adds ``nice``).  For each module the script

1. runs the module's fast test selection (``TESTS``) once without mutation, under ``coverage`` when it is importable
   (``pip install coverage``), to check it passes and to learn which lines it executes and how long it takes;
2. lists the module's mutants with mutmut's own generator and registers them in ``.mutmut-cache`` (so that
   ``mutmut results``, ``mutmut show ID`` and ``mutmut apply ID`` work on them);
3. draws ``--sample`` of them with ``random.Random(f"{seed}:{module}")`` (all of them without ``--sample``), and
   for each: writes the mutant, runs the selection (``-x``: the first failing test kills it), restores the file.

A mutant on a line the unmutated selection never executes (nor the first line of the statement around it) cannot
change what the tests see: it is recorded as surviving without a run ("not covered") — a real gap of the fast
selection, counted against the score, not excluded from it.

``--lane``: a mutant that survives its selection (run or not covered) is then run against the whole default lane
(``-m "not slow"``, what the README's fast check runs; CI runs the slow tests too): a selection is a shortcut,
the score that counts is the suite's.  Such a mutant is reported "killed by the lane", and the summary gives both
scores: the selections' and the lane's.  A mutant whose run exits non-zero other than
"no tests" (a failing test, or an import/collection error caused by the mutant) is killed; a run over
``10 x baseline + 30 s`` is a timeout (counted as killed, listed separately).  Results go to ``.mutmut-cache``
(per hash of the selection's test files, so changing one of them re-runs them) and a summary line per module to
stdout.  Do not run ``mutmut show``/``apply`` while it runs: they re-read the (then mutated) source into the cache.

Why our own loop rather than ``mutmut run ID`` per mutant: one baseline per module (mutmut caches a single baseline
time for all runners), the per-mutant timeout and exit-code rule above, and no mutmut start-up per mutant.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from mutmut import BAD_SURVIVED, BAD_TIMEOUT, OK_KILLED, UNTESTED, Context, list_mutations, mutate
from mutmut.cache import (Line, Mutant, SourceFile, db_session, get_or_create, init_db, update_line_numbers,
                          update_mutant_status)

ROOT = Path(__file__).resolve().parent.parent
# Every selection starts with the whole texts of the core's refusals: a message mutant ("XX...XX") passes any test
# that checks an exception's type or a fragment of its text (docs/validation/tests.md, "Messages")
MESSAGES = "tests/test_messages.py"
# Fast test selection per module: the fast-lane tests that exercise it (the slow lane is not needed to kill a mutant).
TESTS = {
    "physics/cross_section.py": "tests/test_physics_core.py "
    "tests/test_reference_mediators.py::test_cross_section_functions_equal_reference",
    "physics/models.py": "tests/test_models.py tests/test_reference_mediators.py "
    "tests/test_mutants_core.py::test_loop_mixing_refuses_a_massless_lepton tests/test_mutants_seeds.py",
    "physics/form_factors.py": "tests/test_physics_core.py tests/test_reference_integration.py tests/test_mutants_seeds.py",
    "templates.py": "tests/test_reference_mediators.py tests/test_mediators.py::test_templates_equal_direct_path "
    "tests/test_mediators.py::test_zero_coupling_is_the_standard_model "
    "tests/test_mediators.py::test_scalar_does_not_depend_on_sign "
    "tests/test_mediators.py::test_heavy_zprime_is_vector_nsi tests/test_mutants_gaps.py",
    "stats/chi2.py": "tests/test_chi2_bruteforce.py tests/test_chi2.py",
    "stats/intervals.py": "tests/test_mediators.py tests/test_chi2.py "
    "tests/test_mutants_core.py::test_convention_descriptions_state_the_threshold_they_use "
    "tests/test_mutants_core.py::test_allowed_intervals_interpolate_linearly_without_refine tests/test_mutants_seeds.py "
    "tests/test_mutants_stats.py",
    # the tabulated spectra (8B, reactors) are tested with the Sun
    "sources/spectra.py": "tests/test_physics_core.py tests/test_reference_integration.py tests/test_sun.py "
    "tests/test_mutants_sun.py tests/test_mutants_core.py::test_tabulated_spectrum_moments_by_hand_and_immutable "
    "tests/test_mutants_seeds.py",
    "sources/timing.py": "tests/test_lane_gaps.py "
    "tests/test_reference_integration.py "
    "tests/test_mutants_core.py::test_grid_timing_with_one_time_bin_and_every_flavour tests/test_mutants_seeds.py",
    # the last three with the tests written for their survivors (-k also matches module names: "mutants_morphing"
    # keeps every test of test_mutants_morphing.py)
    "stats/morphing.py": "tests/test_mutants_morphing.py tests/test_xenonnt.py tests/test_morph_replicas.py "
    "tests/test_mutants_seeds.py -k 'hat_weights or folded or morphing or morphed or bad_templates or missing or "
    "mutants_morphing or morph_replicas or morphed_cost_scales or whole_message'",
    "sources/sun.py": "tests/test_sun.py tests/test_mutants_sun.py "
    "tests/test_mutants_core.py::test_survival_probability_refuses_each_bad_oscillation_parameter tests/test_mutants_seeds.py",
    "experiments/xenonnt.py": "tests/test_xenonnt.py tests/test_mutants_xenonnt.py tests/test_mutants_seeds.py",
    # the rest of the core (issue 20: the score on the whole core): where the former response.py and
    # experiments/common.py went (kernel.py, experiments/base.py, responses/energy.py), the costs behind stats/chi2.py
    # (now a facade without mutants), and the modules the table above did not list
    "kernel.py": "tests/test_reference_integration.py tests/test_mutants_core.py tests/test_mutants_seeds.py",
    "experiments/base.py": "tests/test_lane_gaps.py "
    "tests/test_csi2021.py tests/test_lar2020.py tests/test_experiments_common.py "
    "tests/test_mutants_core.py tests/test_reactor.py tests/test_mutants_gaps.py tests/test_mutants_seeds.py",
    "responses/energy.py": "tests/test_reference_integration.py tests/test_projection.py tests/test_mutants_core.py "
    "tests/test_mutants_gaps.py",
    "stats/poisson.py": "tests/test_chi2.py tests/test_chi2_bruteforce.py tests/test_mutants_chi2.py "
    "tests/test_mutants_gaps.py tests/test_mutants_seeds.py",
    "stats/gaussian.py": "tests/test_chi2.py tests/test_chi2_bruteforce.py tests/test_mutants_chi2.py "
    "tests/test_mutants_stats.py tests/test_fixed_parameters.py::test_gaussian_fix_drops_the_column "
    "tests/test_mutants_seeds.py tests/test_compiled.py::test_gaussian_signals_linear_in_a_basis "
    "tests/test_compiled.py::test_gaussian_lines_of_one_branch_equal_the_reference",
    "stats/quadratic.py": "tests/test_compiled.py tests/test_reactor.py "
    "-k 'one_branch or stacked or one_basis or signal_column or linear_in or grid_profiled'",
    "stats/cost.py": "tests/test_lane_gaps.py "
    "tests/test_chi2.py tests/test_mutants_chi2.py tests/test_mutants_stats.py "
    "tests/test_fixed_parameters.py tests/test_named_parameters.py "
    "tests/test_mutants_core.py::test_pull_width_must_be_finite_and_not_negative tests/test_mutants_gaps.py "
    "tests/test_mutants_seeds.py",
    "stats/sum.py": "tests/test_lane_gaps.py "
    "tests/test_chi2.py tests/test_mutants_chi2.py tests/test_fixed_parameters.py "
    "tests/test_named_parameters.py tests/test_mutants_seeds.py",
    "stats/gridprofile.py": "tests/test_lane_gaps.py "
    "tests/test_reactor.py tests/test_mutants_stats.py tests/test_toys.py "
    "tests/test_mutants_gaps.py tests/test_mutants_seeds.py tests/test_compiled.py::test_stacked_closed_forms_equal_each_member "
    "tests/test_compiled.py::test_a_cost_on_one_basis_is_its_profile_of_each_signal",
    "stats/toys.py": "tests/test_toys.py tests/test_mutants_stats.py tests/test_faults.py "
    "tests/test_mutants_core.py tests/test_mutants_seeds.py "
    "-k 'toys or mutants_stats or seed or critical_value or whole_message'",
    "mediators.py": "tests/test_lane_gaps.py "
    "tests/test_mediators.py tests/test_properties.py tests/test_mutants_seeds.py",
}
STATUS_WORD = {OK_KILLED: "killed", BAD_SURVIVED: "survived", BAD_TIMEOUT: "timeout"}


# the default lane (README: the fast check), on both cores
LANE = "tests -n 2"


def pytest_command(python: str, tests: str) -> list[str]:
    return [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *shlex.split(tests)]


def run_mutant(python: str, path: str, mutated: str, original: str, tests: str, timeout: float) -> int:
    """The status of one mutant against ``tests``: the mutated source written, the tests run, the file restored."""
    try:
        (ROOT / path).write_text(mutated)
        proc = subprocess.run(pytest_command(python, tests), cwd=ROOT, capture_output=True, timeout=timeout)
        return BAD_SURVIVED if proc.returncode in (0, 5) else OK_KILLED
    except subprocess.TimeoutExpired:
        return BAD_TIMEOUT
    finally:
        (ROOT / path).write_text(original)


def die(message: str) -> None:
    """The project's convention for bad input: one ``error:`` line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def selection_hash(tests: str) -> str:
    """Hash of the selection and of the files it runs (with conftest.py): a cached status stays valid until one
    of them changes (mutmut's own hash covers every test file, so any new test would re-run every mutant)."""
    h = hashlib.sha256(tests.encode())
    files = {arg.split("::")[0] for arg in shlex.split(tests) if arg.startswith("tests/")} | {"tests/conftest.py"}
    for name in sorted(files):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def baseline(python: str, path: str, tests: str) -> tuple[float, set[int] | None]:
    """Run the selection unmutated; return its wall time (s) and the 1-based lines of `path` it executed (or None)."""
    cov_file = ROOT / ".mutmut-coverage"
    try:
        import coverage
    except ImportError:
        coverage = None
    cmd = pytest_command(python, tests)
    if coverage is not None:
        cmd = [python, "-m", "coverage", "run", f"--data-file={cov_file}", f"--include={path}", *cmd[1:]]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], file=sys.stderr)
        die(f"the test selection for {path} fails without mutation (its output above)")
    if coverage is None:
        return elapsed, None
    data = coverage.CoverageData(basename=str(cov_file))
    data.read()
    lines = set()
    for measured in data.measured_files():
        if Path(measured).resolve() == (ROOT / path).resolve():
            lines |= set(data.lines(measured) or ())
    cov_file.unlink(missing_ok=True)
    return elapsed, lines


def statement_starts(source: str) -> dict[int, int]:
    """1-based line -> first line of the innermost simple statement or compound-statement header containing it."""
    starts: dict[int, int] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt) and not isinstance(node, ast.Module):
            last = node.end_lineno
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.While,
                                 ast.With, ast.Try)):
                body = getattr(node, "body", None)
                last = body[0].lineno - 1 if body else node.lineno  # only the header: the body has its own statements
            for line in range(node.lineno, max(last, node.lineno) + 1):
                # ast.walk is breadth first: inner statements come later and overwrite, so the innermost wins
                starts[line] = node.lineno
    return starts


@init_db
@db_session
def register(path: str, mutants) -> None:
    """Add the mutants to .mutmut-cache.  Not mutmut's register_mutants: it skips a file whose hash
    update_line_numbers has just stored, so mutants of a changed line would be missing."""
    sourcefile = SourceFile.get(filename=path)
    for mid in mutants:
        line = Line.get(sourcefile=sourcefile, line=mid.line, line_number=mid.line_number)
        get_or_create(Mutant, line=line, index=mid.index, defaults=dict(status=UNTESTED))


@init_db
@db_session
def mutant_pk(path: str, mid) -> int:
    sourcefile = SourceFile.get(filename=path)
    line = Line.get(sourcefile=sourcefile, line=mid.line, line_number=mid.line_number)
    return Mutant.get(line=line, index=mid.index).id


@init_db
@db_session
def cached_status(path: str, mid, tests_hash: str) -> str | None:
    sourcefile = SourceFile.get(filename=path)
    line = Line.get(sourcefile=sourcefile, line=mid.line, line_number=mid.line_number)
    mutant = Mutant.get(line=line, index=mid.index)
    if mutant is None or mutant.tested_against_hash != tests_hash or mutant.status not in STATUS_WORD:
        return None
    return mutant.status


def run_module(module: str, args) -> dict:
    path = f"src/cevnsfit/{module}"
    tests = args.tests or (f"{MESSAGES} {TESTS[module]}" if module in TESTS else None)
    if not tests:
        die(f"no test selection for {module} (add it to TESTS in {Path(__file__).name})")
    if subprocess.run(["git", "diff", "--quiet", "--", path], cwd=ROOT).returncode != 0:
        die(f"{path} has uncommitted changes: commit or stash them first")
    original = (ROOT / path).read_text()
    tests_hash = selection_hash(tests)
    base_s, covered = baseline(args.python, path, tests)
    update_line_numbers(path)
    mutants = list_mutations(Context(source=original, filename=path, dict_synonyms=[""]))
    register(path, mutants)
    chosen = mutants
    if args.sample and args.sample < len(mutants):
        chosen = sorted(random.Random(f"{args.seed}:{module}").sample(mutants, args.sample),
                        key=lambda m: (m.line_number, m.index))
    starts = statement_starts(original)

    def is_covered(mid) -> bool:
        line1 = mid.line_number + 1
        return covered is None or line1 in covered or starts.get(line1, line1) in covered

    timeout = 10 * base_s + 30
    n_uncovered = sum(not is_covered(m) for m in mutants)
    print(f"== {module}: {len(mutants)} mutants ({n_uncovered} on lines the selection does not run), {len(chosen)} to "
          f"check; baseline {base_s:.1f} s; tests: {tests}", flush=True)
    counts = {"killed": 0, "timeout": 0, "survived": 0, "not covered": 0, "cached": 0, "killed by the lane": 0}
    survivors = []
    lane_timeout = 10 * args.lane_baseline + 30 if args.lane else None
    for mid in chosen:
        pk = mutant_pk(path, mid)
        line1 = mid.line_number + 1
        status = None if args.rerun else cached_status(path, mid, tests_hash)
        word = None
        if status is not None:
            counts["cached"] += 1
        elif not is_covered(mid):
            status, word = BAD_SURVIVED, "not covered"
        else:
            mutated, _ = mutate(Context(source=original, filename=path, mutation_id=mid, dict_synonyms=[""]))
            status = run_mutant(args.python, path, mutated, original, tests, timeout)
            update_mutant_status(path, mid, status, tests_hash)
        word = word or STATUS_WORD[status]
        if status == BAD_SURVIVED and args.lane:  # the whole default lane (not cached: it changes with any test)
            mutated, _ = mutate(Context(source=original, filename=path, mutation_id=mid, dict_synonyms=[""]))
            if run_mutant(args.python, path, mutated, original, LANE, lane_timeout) != BAD_SURVIVED:
                status, word = OK_KILLED, "killed by the lane"
        counts[word] += 1
        if status == BAD_SURVIVED:
            survivors.append(f"  {pk}  line {line1}: {mid.line.strip()}  ({word})")
        print(f"  {pk:5d} {word}", flush=True)
    killed = counts["killed"] + counts["timeout"]
    n = len(chosen)
    print(f"-- {module}: {killed}/{n} killed by the selection ({counts['timeout']} by timeout), "
          f"{counts['killed by the lane']} more by the lane, {counts['survived']} survived, {counts['not covered']} "
          f"not covered ({counts['cached']} from the cache)", flush=True)
    print("\n".join(survivors), flush=True)
    return {"module": module, "mutants": len(mutants), "checked": n, "killed": killed,
            "lane": killed + counts["killed by the lane"]}


def score(rows: list[dict], key: str) -> tuple[float, float]:
    """(estimate, binomial standard error) of the score over the core from each module's sampled fraction
    ``row[key] / row["checked"]``, weighted by its number of mutants (stratified)."""
    total = sum(r["mutants"] for r in rows)
    est = sum(r["mutants"] * r[key] / r["checked"] for r in rows if r["checked"]) / max(total, 1)
    # sampling without replacement: binomial variance times the finite-population correction (N - n) / (N - 1)
    var = sum((r["mutants"] / total) ** 2 * (r[key] / r["checked"]) * (1 - r[key] / r["checked"])
              / r["checked"] * (r["mutants"] - r["checked"]) / (r["mutants"] - 1)
              for r in rows if 0 < r["checked"] < r["mutants"])
    return est, math.sqrt(var)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="paths under src/cevnsfit/ (default: every module in TESTS)")
    parser.add_argument("--sample", type=int, default=0, help="mutants drawn per module (0: all)")
    parser.add_argument("--seed", default="14", help="seed of the draw (with the module name)")
    parser.add_argument("--rerun", action="store_true", help="ignore statuses cached for the same tests")
    parser.add_argument("--tests", help="override the module's test selection")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs pytest")
    parser.add_argument("--lane", action="store_true", help="run each selection's survivor against the whole "
                        "default lane too (module docstring)")
    args = parser.parse_args()
    os.chdir(ROOT)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    # SIGTERM behaves as Ctrl-C, so the `finally` above restores the mutated file
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.lane:  # the lane must pass unmutated; its time sets the mutants' timeout
        start = time.monotonic()
        if subprocess.run(pytest_command(args.python, LANE), cwd=ROOT, capture_output=True).returncode != 0:
            die("the default lane fails without mutation")
        args.lane_baseline = time.monotonic() - start
    rows = [run_module(m, args) for m in (args.modules or list(TESTS))]
    total, checked = sum(r["mutants"] for r in rows), sum(r["checked"] for r in rows)
    for key, what in (("killed", "by the selections"), ("lane", "by the default lane")) if args.lane else (
            ("killed", "by the selections"),):
        est, err = score(rows, key)
        print(f"== score {what}: {100 * est:.1f} % of {total} mutants killed (binomial standard error "
              f"{100 * err:.1f} %, from {checked} checked; seed {args.seed})")


if __name__ == "__main__":
    main()
