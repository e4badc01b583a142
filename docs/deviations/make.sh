#!/bin/sh
# Makes the deviation tables of docs/deviations/ (`npm run deviations`): a `ringspec conform`
# campaign of the spec against Debian's QEMU 7.2 and against Bochs 2.7, each grouped by the rule
# where the two part ways, with one shrunk, replayable example per rule. The campaigns are bounded
# by time (the emulators run about 1 case/s here), so the number of cases depends on the machine;
# the seed fixes which cases they are (case i is always the same case), and every example carries
# the command that replays it.
#   RINGSPEC_DEVIATIONS_TIME   seconds of cases per emulator (default 420; then one shrink of at
#                              most 15 s per rule group)
#   RINGSPEC_DEVIATIONS_SEED   the campaign's seed (default 2026)
#   arguments                  which tables to make: qemu, bochs (default both)
# Needs qemu-system-x86, bochs, bochsbios and vgabios (README, "Real emulators").
set -u
cd "$(dirname "$0")/../.."
TIME=${RINGSPEC_DEVIATIONS_TIME:-420}
SEED=${RINGSPEC_DEVIATIONS_SEED:-2026}
status=0
[ $# -gt 0 ] || set -- qemu bochs
for engine in "$@"; do
  case $engine in
    qemu) name=qemu-7.2 ;;
    bochs) name=bochs-2.7 ;;
    *) echo "deviations: expected qemu or bochs, got $engine" >&2; exit 2 ;;
  esac
  rm -rf "docs/deviations/$name.md.divergences"
  # Exit status 1 means divergences were found: that is the table, not a failure.
  node cli/bin.js conform --b "$engine" --time "$TIME" --seed "$SEED" --workers 2 --shrink-per-rule 1 --shrink-time 15 \
    --expectations docs/deviations/expectations.json --report "docs/deviations/$name.md" --json \
    > "docs/deviations/$name.run.tmp"
  code=$?
  if [ "$code" -gt 1 ]; then echo "deviations: the $engine campaign failed (exit $code)" >&2; status=$code; continue; fi
  # The run's figures (cases/s from --json), without the per-case outcomes.
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const keep = ["engines", "campaign", "cases", "passed", "failed", "divergences", "errors", "expected_deviations", "skipped", "distinct_signatures", "steps_compared", "elapsed_s", "cases_per_s", "steps_per_s", "restarts", "not_compared"];
    process.stdout.write(JSON.stringify(Object.fromEntries(keep.map((k) => [k, r[k]])), null, 1) + "\n");
  ' "docs/deviations/$name.run.tmp" > "docs/deviations/$name.run.json"
  rm -f "docs/deviations/$name.run.tmp"
  echo "deviations: docs/deviations/$name.md ($(grep -o '"cases_per_s": [^,]*' "docs/deviations/$name.run.json"))"
done
exit $status
