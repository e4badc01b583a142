// Every vector on QEMU and on Bochs (`npm run test:emulators`; README says how to install them):
// each result is a pass or exactly the deviation expected-deviations.ts lists for it, with its
// reason. A vector failing for any other reason fails here, and so does a listed deviation that
// no longer shows (the list must stay true).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parseDocument, type LoadedVector } from "../../contract/load.ts";
import type { AsyncEngine } from "../../contract/engine.ts";
import { checkVector, type VectorResult } from "../../conformance/vector-check.ts";
import { QemuEngine } from "../../engines/qemu/engine.ts";
import { BochsEngine } from "../../engines/bochs/engine.ts";
import { liveChildren } from "../../engines/host/process.ts";
import { BOCHS_DEVIATIONS, BOCHS_EXPECTED, QEMU_DEVIATIONS, QEMU_EXPECTED, type Deviation, type ExpectedFailure } from "./expected-deviations.ts";

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

async function checkAll(open: () => AsyncEngine): Promise<Map<string, VectorResult>> {
  const results = new Map<string, VectorResult>();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const v = VECTORS[next++];
      if (v === undefined) return;
      const engine = open();
      try {
        results.set(v.vector.name, await checkVector(v, engine, { timeoutMs: 120_000 }));
      } finally {
        await engine.close();
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  return results;
}

function describeEmulator(name: string, open: () => AsyncEngine, table: Readonly<Record<string, ExpectedFailure>>, deviations: readonly Deviation[]) {
  describe(`vectors on ${name}`, () => {
    let results = new Map<string, VectorResult>();
    beforeAll(async () => {
      results = await checkAll(open);
    }, 900_000);

    it("leaves no emulator process behind", () => {
      expect(liveChildren()).toBe(0);
    });

    it("lists only vectors that exist and deviations it explains", () => {
      const names = new Set(VECTORS.map((v) => v.vector.name));
      const ids = new Set(deviations.map((d) => d.id));
      for (const [vector, entry] of Object.entries(table)) {
        expect(names.has(vector), vector).toBe(true);
        for (const [id] of entry.deviations) expect(ids.has(id), `${vector}: ${id}`).toBe(true);
      }
    });

    for (const v of VECTORS) {
      const vectorName = v.vector.name;
      it(vectorName, () => {
        const r = results.get(vectorName)!;
        const expected = table[vectorName];
        const got = r.mismatches.map((m) => m.field).sort();
        const detail = `${r.exit}${r.detail === undefined ? "" : ` (${r.detail})`}: ${r.mismatches.map((m) => `${m.field} expected ${String(m.expected)} got ${String(m.got)}`).join("; ")}`;
        if (expected === undefined) {
          expect(r.passed, detail).toBe(true);
          return;
        }
        expect(r.passed, `${vectorName} passes now: its expected deviation is gone (update expected-deviations.ts)`).toBe(false);
        if (expected.error !== undefined) {
          expect(r.exit).toBe("error");
          expect(r.detail).toMatch(expected.error);
          return;
        }
        // Exactly the listed fields differ, and every listed deviation shows.
        expect(got, detail).toEqual(expected.deviations.flatMap(([, fields]) => fields).sort());
      });
    }
  });
}

describeEmulator("QEMU", () => new QemuEngine(), QEMU_EXPECTED, QEMU_DEVIATIONS);
describeEmulator("Bochs", () => new BochsEngine(), BOCHS_EXPECTED, BOCHS_DEVIATIONS);
