#!/bin/sh
# `npm run test:busy`: the suite as a slower, busier machine (CI: 2 slow, shared cores) sees it —
# both workers on one core, the test files in a random order. The seed is printed. The seed fixes
# the queue's order, not which files share a worker: the two workers take files as they free up
# (isolate: false, so a file sees what the earlier files of its own worker left behind), so a
# leak from one file into another may not show again with the same seed. The printed replay,
# RINGSPEC_SHUFFLE_SEED=N npm run test:busy -- --maxWorkers=1, gives one worker the whole queue in
# that order. Arguments go to vitest.
set -e
seed="${RINGSPEC_SHUFFLE_SEED:-$(date +%s)}"
case "$seed" in ''|*[!0-9]*) echo "RINGSPEC_SHUFFLE_SEED: expected a whole number, got \"$seed\"" >&2; exit 2;; esac
echo "test:busy: one core, test files in a random order, seed $seed (replay in that order, one worker: RINGSPEC_SHUFFLE_SEED=$seed npm run test:busy -- --maxWorkers=1)"
if command -v taskset >/dev/null 2>&1; then
  # The first CPU this process may run on ("pid N's current affinity list: 2-5,7" gives 2): CPU 0
  # may not be in the allowed set (a container's cpuset), and taskset -c 0 then fails.
  allowed=$(taskset -pc $$)
  allowed=${allowed##*: }
  cpu=${allowed%%[,-]*}
  case "$cpu" in ''|*[!0-9]*) echo "test:busy: cannot read the allowed CPUs from \"$allowed\"" >&2; exit 2;; esac
  RINGSPEC_SHUFFLE_SEED=$seed exec taskset -c "$cpu" npx vitest run "$@"
fi
echo "test:busy: taskset (util-linux) not found: running on every core" >&2
RINGSPEC_SHUFFLE_SEED=$seed exec npx vitest run "$@"
