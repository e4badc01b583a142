// One case in lockstep, three ways (conformance/campaign/lockstep-case.ts): compared every step,
// every N steps with the failing window re-run step by step (`--every N`), and on whole runs
// located by bisection (an engine that cannot single-step). All three must find the same step and
// the same differing fields. The engines: spec against impl with SWAPGS broken (a planted bug),
// on model-based sequences whose kernel entry runs SWAPGS several steps in.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { lockstepCase, type CaseVerdict } from "../../conformance/campaign/lockstep-case.ts";
import { MODEL_FAMILY } from "../../conformance/generate/model.ts";
import { PlantedEngine, plantedBug } from "../../conformance/planted.ts";
import { asAsync } from "../../contract/async.ts";
import type { AsyncEngine } from "../../contract/engine.ts";
import { engineEntry } from "../../engines/registry.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { SpecEngine } from "../../spec/engine.ts";

const SPEC = engineEntry("spec")!.capabilities;
const IMPL = engineEntry("impl")!.capabilities;

function engines(options: { bSingleSteps: boolean }): { a: AsyncEngine; b: AsyncEngine } {
  const broken = new PlantedEngine(new ImplEngine(), plantedBug("swapgs-noop")!);
  return { a: asAsync(new SpecEngine(), SPEC), b: asAsync(broken, { ...IMPL, name: "impl with swapgs-noop", singleStep: options.bSingleSteps }) };
}

async function verdict(c: ReturnType<typeof MODEL_FAMILY.build>, every: number, bSingleSteps = true): Promise<CaseVerdict> {
  const { a, b } = engines({ bSingleSteps });
  return lockstepCase(a, b, c, { every, rule: "exact", timeoutMs: 60_000 });
}

const fieldsOf = (v: CaseVerdict) => (v.kind === "diverge" ? v.divergence.differences.map((d) => d.field).filter((f) => !f.startsWith("event.")) : []);

describe("a case compared every step, every N steps, and on whole runs", () => {
  it("finds the same diverging step and fields each way (--every re-runs the window; whole runs bisect)", async () => {
    // Model cases without raises (checkpoints are used only then) that reach a SYSCALL.
    const cases = fc.sample(MODEL_FAMILY.arbitrary, { seed: 11, numRuns: 60 }).map((v) => MODEL_FAMILY.build(v)).filter((c) => c.raises.length === 0);
    let checked = 0;
    for (const c of cases) {
      const each = await verdict(c, 1);
      if (each.kind !== "diverge" || each.divergence.step < 6) continue;
      expect(each.divergence.located).toBe("step");
      expect(fieldsOf(each)).toContain("msrs.KERNEL_GS_BASE");
      for (const every of [4, 7]) {
        const windowed = await verdict(c, every);
        expect(windowed.kind).toBe("diverge");
        if (windowed.kind !== "diverge") continue;
        expect(windowed.divergence.located).toBe("window");
        expect(windowed.divergence.step).toBe(each.divergence.step);
        expect(windowed.divergence.differences).toEqual(each.divergence.differences);
      }
      const bisected = await verdict(c, 1, false);
      expect(bisected.kind).toBe("diverge");
      if (bisected.kind !== "diverge") continue;
      expect(bisected.divergence.located).toBe("bisection");
      expect(bisected.divergence.step).toBe(each.divergence.step);
      expect(fieldsOf(bisected)).toEqual(fieldsOf(each));
      if (++checked === 3) break;
    }
    expect(checked).toBe(3);
  }, 120_000);

  it("agreeing engines agree each way", async () => {
    const c = MODEL_FAMILY.build(fc.sample(MODEL_FAMILY.arbitrary, { seed: 12, numRuns: 1 })[0]!);
    for (const every of [1, 5]) {
      const v = await lockstepCase(asAsync(new SpecEngine(), SPEC), asAsync(new ImplEngine(), IMPL), { ...c, raises: [] }, { every, rule: "exact", timeoutMs: 60_000 });
      expect(v.kind).toBe("agree");
    }
  });
});
