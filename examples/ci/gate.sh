#!/usr/bin/env bash
# bench's regression gate in CI: the commands the workflow runs, for any CI system or a shell.
#
#   examples/ci/gate.sh baseline   run the CI tier on this checkout and export it as the baseline
#                                  (on the main branch; the workflow caches the file)
#   examples/ci/gate.sh gate       run the CI tier on this checkout and compare it with the
#                                  baseline: exit 1 on a regression or a comparison missing from
#                                  the run, and leave the comparison page in $BENCH_CI_OUT
#
# Settings (environment variables, with their defaults):
#   BENCH_CI_SUITE=ci                     the suite: a shipped suite's name or a YAML file
#   BENCH_CI_BASELINE=ci-baseline.csv     the baseline file written by `baseline`, read by `gate`
#   BENCH_CI_FALLBACK=baselines/ci.csv    read by `gate` when there is no BENCH_CI_BASELINE
#   BENCH_CI_STORE=runs/ci.sqlite         the results store of this job
#   BENCH_CI_OUT=bench-compare            where `gate` writes compare.html / .md / .csv / .png
#   BENCH_CI_TOLERANCE=0                  the gate's tolerance (normalised score units)
#   BENCH_CI_EFFECT=0.1                   the drop the gate must be able to see (else: under-powered)
#   BENCH_CI_JOBS=2                       parallel runs
set -euo pipefail

suite=${BENCH_CI_SUITE:-ci}
baseline=${BENCH_CI_BASELINE:-ci-baseline.csv}
fallback=${BENCH_CI_FALLBACK:-baselines/ci.csv}
store=${BENCH_CI_STORE:-runs/ci.sqlite}
out=${BENCH_CI_OUT:-bench-compare}
tolerance=${BENCH_CI_TOLERANCE:-0}
effect=${BENCH_CI_EFFECT:-0.1}
jobs=${BENCH_CI_JOBS:-2}

# the suite's name inside the store (a file's `name:` field, or the shipped suite's name)
name=$(python -c 'import sys; from bench.suite import find_suite, load_suite; print(load_suite(find_suite(sys.argv[1])).name)' "$suite")

run_tier() {
  # -q: no progress bars in CI logs; a failed run fails the job here (exit 1) before any comparison
  bench run "$suite" --store "$store" --jobs "$jobs" -q
}

case "${1:-}" in
  baseline)
    run_tier
    bench export --store "$store" --suite "$name" --no-timing -o "$baseline"
    ;;
  gate)
    if [[ ! -f "$baseline" ]]; then
      echo "gate.sh: no $baseline from the main branch; comparing with $fallback" >&2
      baseline=$fallback
    fi
    run_tier
    bench compare --store "$store" --suite "$name" --baseline "$baseline" --tolerance "$tolerance" \
      --effect "$effect" -o "$out"
    ;;
  *)
    echo "usage: $0 baseline|gate (see the comments at the top)" >&2
    exit 2
    ;;
esac
