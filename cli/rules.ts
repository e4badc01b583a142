// `ringspec rules`: the rule registry and rule coverage (digest §2–§22 rules implemented, named by a
// test, or declared out of scope), and optionally which rules a set of vectors exercises.
import { HELP_OPTION, parseArgs } from "./args.ts";
import { expandPaths, loadDocument } from "./input.ts";
import type { Io } from "./io.ts";
import { KNOWN_UNRECORDED, ruleCoverage, rulesHitBy, type CoverageRun } from "../conformance/rule-coverage.ts";
import { allRules } from "../spec/index.ts";
import { NOT_MODELLED } from "../spec/rules/not-modelled.ts";

export const RULES_HELP = `Usage: ringspec rules [--list] [--hit PATH]... [--json]

Prints rule coverage: how many rule IDs of the reference digest (docs/reference, sections 2-22)
the spec implements and the test suite exercises (rules the spec ran while \`npm test\` ran,
recorded in conformance/rule-coverage.json), which are declared out of scope (with the reason),
and which are missing. In a source checkout it also lists, secondarily, registered rules that no
test's title names.

Options:
  --list        every registered rule: ID, description, SDM source
  --hit PATH    run these vectors (files or directories) on the spec with rule recording on,
                and report which registered rules they exercised (repeatable; further PATHs
                may follow as arguments)
  --json        print one JSON object instead
  -h, --help    this help

Exit status: 0 when no digest rule is missing, 1 otherwise, 2 for bad arguments or input.`;

export function rulesCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, [HELP_OPTION, { name: "list", value: false }, { name: "json", value: false }, { name: "hit", value: true, repeatable: true }], "rules");
  if (args.flags.has("help")) {
    io.out(RULES_HELP + "\n");
    return 0;
  }
  const hitPaths = [...(args.lists.get("hit") ?? []), ...args.positionals];
  const coverage = ruleCoverage();
  const rules = allRules();
  let hit: Set<string> | undefined;
  if (hitPaths.length > 0) {
    const runs: CoverageRun[] = [];
    for (const entry of expandPaths(hitPaths)) {
      if (entry.error !== undefined) {
        io.err(entry.error);
        return 2;
      }
      const doc = loadDocument(entry.file);
      runs.push({ state: doc.state, profile: doc.profile ?? "intel", maxSteps: doc.kind === "vector" ? doc.vector.limits.max_steps : 1_000_000 });
    }
    hit = rulesHitBy(runs);
  }
  if (args.flags.has("json")) {
    io.out(
      JSON.stringify({
        digest: coverage.digest.length,
        implemented_and_exercised: coverage.exercised.length,
        not_modelled: Object.fromEntries(coverage.notModelled.map((id) => [id, NOT_MODELLED[id]])),
        missing: coverage.missing,
        registered: rules.length,
        registered_unexercised: coverage.unexercised,
        ...(coverage.unnamed === undefined ? {} : { registered_unnamed_by_test_titles: coverage.unnamed }),
        ...(hit === undefined ? {} : { hit_by_vectors: [...hit].filter((id) => rules.some((r) => r.id === id)).sort() }),
        ...(args.flags.has("list") ? { rules } : {}),
      }) + "\n",
    );
    return coverage.missing.length === 0 ? 0 : 1;
  }
  if (args.flags.has("list")) for (const r of rules) io.out(`${r.id}\t${r.description}\t${r.source}\n`);
  io.out(`digest rules (sections 2-22): ${coverage.digest.length}\n`);
  io.out(`  implemented and exercised by the test suite: ${coverage.exercised.length}\n`);
  io.out(`  declared out of scope: ${coverage.notModelled.length}\n`);
  for (const id of coverage.notModelled) io.out(`    ${id}: ${NOT_MODELLED[id]}\n`);
  io.out(`  missing: ${coverage.missing.length}${coverage.missing.length > 0 ? ` (${coverage.missing.join(" ")})` : ""}\n`);
  const unrecorded = coverage.missing.filter((id) => KNOWN_UNRECORDED.includes(id));
  if (unrecorded.length > 0) io.out(`    of which ${unrecorded.length} implemented and named by tests, but their checks are never recorded while the suite runs (a tagging gap in spec/)\n`);
  io.out(`registered rules (digest and finer): ${rules.length}, exercised by no test: ${coverage.unexercised.length}${coverage.unexercised.length > 0 ? ` (${coverage.unexercised.join(" ")})` : ""}\n`);
  if (coverage.unnamed !== undefined) io.out(`  (secondary: named in no test title: ${coverage.unnamed.length})\n`);
  if (hit !== undefined) {
    const exercised = rules.filter((r) => hit!.has(r.id)).length;
    io.out(`exercised by the given vectors: ${exercised} of ${rules.length} registered rules\n`);
  }
  return coverage.missing.length === 0 ? 0 : 1;
}
