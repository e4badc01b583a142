#!/bin/sh
# `npm run fuzz`: the long runs `npm test` keeps short. Lockstep (spec against impl, events and whole
# states after every step) on generated programs and on every transition-scenario family, over
# several seeds of their own, then the hostile inputs at issue 8's full sizes (the 40,000-page hog,
# 30,000 memory entries, the 491,520-block bomb for 1,000,000 steps), measured in child processes.
#   RINGSPEC_FUZZ_SEEDS   seeds, space-separated (default "101 202 303")
#   RINGSPEC_FUZZ_RUNS    cases per seed and family (default 1000)
# Any divergence prints its replay command (RINGSPEC_SEED=... RINGSPEC_PATH=... npx vitest run ...).
set -e
seeds="${RINGSPEC_FUZZ_SEEDS:-101 202 303}"
runs="${RINGSPEC_FUZZ_RUNS:-1000}"
case "$runs" in ''|*[!0-9]*) echo "RINGSPEC_FUZZ_RUNS: expected a whole number, got \"$runs\"" >&2; exit 2;; esac
for seed in $seeds; do
  case "$seed" in ''|*[!0-9]*) echo "RINGSPEC_FUZZ_SEEDS: expected whole numbers, got \"$seed\"" >&2; exit 2;; esac
done
started=$(date +%s)
echo "fuzz: hostile inputs at full size"
RINGSPEC_HOSTILE=full npx vitest run --reporter=verbose test/hostile/cli-hostile.test.ts
for seed in $seeds; do
  echo "fuzz: lockstep, seed $seed, $runs cases per family"
  RINGSPEC_SEED=$seed RINGSPEC_LOCKSTEP_RUNS=$runs npx vitest run --reporter=dot \
    test/conformance/lockstep.test.ts test/conformance/lockstep-transitions.test.ts test/conformance/lockstep-devices.test.ts
done
echo "fuzz: done in $(( $(date +%s) - started )) s"
