// Every vector on QEMU and on Bochs (`npm run test:emulators`; README says how to install them):
// each result is a pass or a deviation the committed deviation table of that emulator names
// (docs/deviations/*.json, made by `npm run deviations`). A failing vector is run again in lockstep
// with the spec, and the divergence is grouped under its rule exactly as `ringspec conform` groups
// a campaign's; that rule must be one of the table's groups. A vector failing any other way (an
// unexplained difference, or one the table does not name) fails here, and so does a listed
// refusal that no longer happens.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parseDocument, type LoadedVector } from "../../contract/load.ts";
import type { AsyncEngine } from "../../contract/engine.ts";
import { asAsync } from "../../contract/async.ts";
import { checkVector, type VectorResult } from "../../conformance/vector-check.ts";
import { lockstepCase } from "../../conformance/campaign/lockstep-case.ts";
import { attribute } from "../../conformance/campaign/attribution.ts";
import { GAPS } from "../../conformance/campaign/gaps.ts";
import { engineEntry } from "../../engines/registry.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { QemuEngine } from "../../engines/qemu/engine.ts";
import { BochsEngine } from "../../engines/bochs/engine.ts";
import { liveChildren } from "../../engines/host/process.ts";
import { deviationTable, type DeviationTable } from "./tables.ts";
import { EXPECTED, type EmulatorExpectations } from "./expected-deviations.ts";

const DIR = fileURLToPath(new URL("../../conformance/vectors/", import.meta.url));
const VECTORS: readonly LoadedVector[] = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => {
    const doc = parseDocument(readFileSync(join(DIR, f), "utf8"));
    if (doc.kind !== "vector") throw new Error(f);
    return doc;
  });

/** Emulator processes at once (the machine has 2 cores). */
const WORKERS = 2;

interface Outcome {
  readonly result: VectorResult;
  /** For a failing vector: the rule (or gap) its lockstep divergence with the spec is grouped under. */
  readonly group?: string;
  readonly why?: string;
}

/** Runs a failing vector in lockstep with the spec, as a campaign runs a case, with the known
 *  gaps the table's campaign expected. */
async function groupOf(v: LoadedVector, engine: AsyncEngine, table: DeviationTable): Promise<{ group: string; why: string }> {
  const spec = asAsync(new SpecEngine(), engineEntry("spec")!.capabilities);
  const built = { state: v.state, profile: v.profile, maxSteps: v.vector.limits.max_steps, raises: [] };
  const verdict = await lockstepCase(spec, engine, built, { every: 1, rule: "architectural", timeoutMs: 300_000 });
  if (verdict.kind === "error") return { group: `error: ${verdict.reason}`, why: verdict.reason };
  if (verdict.kind !== "diverge") return { group: `lockstep ${verdict.kind}`, why: "the lockstep with the spec finds no divergence" };
  const gap = GAPS.find((g) => table.expected.has(g.name) && g.applies(verdict.divergence));
  if (gap !== undefined) return { group: gap.name, why: gap.description };
  const at = attribute(verdict.divergence, v.profile);
  return { group: at.rule, why: at.why };
}

async function checkAll(open: () => AsyncEngine, table: DeviationTable): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const v = VECTORS[next++];
      if (v === undefined) return;
      const engine = open();
      try {
        const result = await checkVector(v, engine, { timeoutMs: 120_000 });
        outcomes.set(v.vector.name, result.passed || result.exit === "error" ? { result } : { result, ...(await groupOf(v, engine, table)) });
      } finally {
        await engine.close();
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  return outcomes;
}

function describeEmulator(name: string, open: () => AsyncEngine, tableName: "qemu-7.2" | "bochs-2.7", expected: EmulatorExpectations) {
  const cannotRun = expected.cannotRun;
  describe(`vectors on ${name}`, () => {
    let outcomes = new Map<string, Outcome>();
    let table: DeviationTable;
    beforeAll(async () => {
      table = deviationTable(tableName);
      outcomes = await checkAll(open, table);
    }, 1_800_000);

    it("leaves no emulator process behind", () => {
      expect(liveChildren()).toBe(0);
    });

    it(`is held to the committed table (docs/deviations/${tableName}.json)`, () => {
      expect(table.rules.size).toBeGreaterThan(0);
      for (const vector of Object.keys(cannotRun)) expect(VECTORS.some((v) => v.vector.name === vector), vector).toBe(true);
    });

    it("shows each deviation listed by vector (found by the vectors only) on its vector, under its rule, whatever the table names", () => {
      for (const [vector, { rule }] of Object.entries(expected.vectorDeviations)) {
        expect(VECTORS.some((v) => v.vector.name === vector), vector).toBe(true);
        expect(outcomes.get(vector)?.result.passed, `${vector} passes now: remove it from vectorDeviations`).toBe(false);
        expect(outcomes.get(vector)?.group, `${vector} no longer deviates under ${rule}`).toBe(rule);
      }
    });

    for (const v of VECTORS) {
      const vectorName = v.vector.name;
      it(vectorName, () => {
        const o = outcomes.get(vectorName)!;
        const r = o.result;
        const refusal = cannotRun[vectorName];
        if (refusal !== undefined) {
          expect(r.exit, `${vectorName} runs now: remove it from CANNOT_RUN`).toBe("error");
          expect(r.detail).toMatch(refusal);
          return;
        }
        const detail = `${r.exit}${r.detail === undefined ? "" : ` (${r.detail})`}: ${r.mismatches.map((m) => `${m.field} expected ${String(m.expected)} got ${String(m.got)}`).join("; ")}`;
        if (r.passed) return;
        expect(r.exit, detail).not.toBe("error");
        // A deviation: grouped under a rule the committed table names, or the one listed for this
        // vector (found by the vectors only).
        const listed = expected.vectorDeviations[vectorName]?.rule;
        expect([...table.rules, ...(listed === undefined ? [] : [listed])], `${vectorName} deviates under ${o.group} (${o.why}), which ${table.file} does not name; ${detail}`).toContain(o.group);
      });
    }
  });
}

describeEmulator("QEMU", () => new QemuEngine(), "qemu-7.2", EXPECTED.qemu);
describeEmulator("Bochs", () => new BochsEngine(), "bochs-2.7", EXPECTED.bochs);
