// Shrinking never trades a failure for a divergence that a known gap explains
// (conformance/campaign/run.ts): a smaller candidate is accepted only when it is classified as the
// case was, a failure under the same rule. Checked in process with a fake engine B: impl, but its
// BSF flips SF (an undefined flag of BSF: the `undefined-flags` gap) always, and ZF (defined) when
// the source has a bit below bit 12 set. The case's source, 0x1234, fails. Its shrink candidates
// are the source rounded (0, 0x1000, 0x1200, 0x1230, in that order): 0 diverges under another rule
// (BSF of zero), 0x1000 under the same rule but only in SF, which the gap explains: the shrink must
// not end there, but at 0x1200.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { asAsync } from "../../contract/async.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { PlantedEngine, type PlantedBug } from "../../conformance/planted.ts";
import { caseId } from "../../conformance/campaign/cases.ts";
import { roundings, type BuiltCase, type Family } from "../../conformance/campaign/families.ts";
import { gapByName } from "../../conformance/campaign/gaps.ts";
import { EngineHolder, runCase, shrinkCase, type CaseSettings } from "../../conformance/campaign/run.ts";
import { servedCapabilities } from "../../engines/process/server.ts";
import { DEFAULT_LAYOUT, buildGuest, HALT_LOOP } from "../../guest/index.ts";

const SF = 0x80n;
const ZF = 0x40n;
/** BSF RAX, RBX. */
const BSF_RAX_RBX = [0x48, 0x0f, 0xbc, 0xc3];

interface BsfCase {
  readonly rbx: bigint;
}

const guest = buildGuest(DEFAULT_LAYOUT, { start: { ring: 0 } });
const start = guest.state.rip;
guest.memory.write(start, [...BSF_RAX_RBX, ...HALT_LOOP]);

/** One BSF of RBX, then HLT. fast-check's arbitrary is a constant: only the family's own moves
 *  shrink it (RBX rounded, zero first), in a known order. */
const bsfFamily: Family<BsfCase> = {
  name: "bsf",
  description: "one BSF RAX, RBX",
  arbitrary: fc.constant({ rbx: 0x1234n }),
  build: (c, profile): BuiltCase => ({ state: { ...guest.state, gpr: guest.state.gpr.map((v, i) => (i === 3 ? c.rbx : v)) }, profile: profile ?? "intel", maxSteps: 4, raises: [] }),
  shrink: (c) => roundings(c.rbx).map((rbx) => ({ rbx })),
  size: () => 1,
  unit: "instructions",
};

const bsfFlags: PlantedBug = {
  name: "bsf-flags",
  description: "BSF flips SF always, and ZF when the source has a bit below bit 12 set",
  rule: "RF-01",
  families: ["bsf"],
  rewrite: (before, event, after) => {
    if (before.rip !== start || event.kind !== "retired") return null;
    return { state: { ...after, rflags: after.rflags ^ SF ^ ((before.gpr[3]! & 0xfffn) === 0n ? 0n : ZF) }, event };
  },
};

const settings: CaseSettings = {
  seed: 1, families: [bsfFamily as Family], profile: undefined, every: 1, rule: "architectural", timeoutMs: 30_000,
  expected: new Set(), gaps: [gapByName("undefined-flags")!], shrinkRuns: 100, shrinkMs: 60_000,
};

function engines(): [EngineHolder, EngineHolder] {
  return [
    new EngineHolder({ name: "spec", open: async () => asAsync(new SpecEngine(), servedCapabilities("spec", false)) }),
    new EngineHolder({ name: "bsf-flags", open: async () => asAsync(new PlantedEngine(new ImplEngine(), bsfFlags), servedCapabilities("impl with bsf-flags", false)) }),
  ];
}

describe("shrinking with known gaps", () => {
  it("a candidate on the way, 0x1000, is what the undefined-flags gap explains, under the case's rule", async () => {
    const [a, b] = engines();
    const explained = await runCase(a, b, { ...settings, families: [{ ...bsfFamily, arbitrary: fc.constant({ rbx: 0x1000n }) } as Family] }, 0);
    expect(explained.status).toBe("expected");
    expect(explained.gap).toBe("undefined-flags");
    const found = await runCase(a, b, settings, 0);
    expect(found.status).toBe("fail");
    // The same rule: without the gap check, the shrink would take it.
    expect(explained.rule).toBe(found.rule);
  });

  it("never accepts a smaller case that an expected gap explains", async () => {
    const [a, b] = engines();
    const found = await runCase(a, b, settings, 0);
    expect(found.status).toBe("fail");
    const result = await shrinkCase(a, b, settings, caseId(settings.families, settings.seed, 0), { rule: found.rule!, signature: found.signature! });
    expect(result).not.toBeNull();
    const shrunk = result!.value as BsfCase;
    expect(shrunk.rbx).not.toBe(0n);
    // Rounded as far as the failure lasts: 0x1000 is skipped (the gap explains it), 0x1200 fails.
    expect(shrunk.rbx).toBe(0x1200n);
    expect(result!.judged.gap).toBeUndefined();
    expect(result!.judged.rule).toBe(found.rule);
    const d = result!.judged.verdict.kind === "diverge" ? result!.judged.verdict.divergence : undefined;
    expect((d!.stateA.rflags ^ d!.stateB.rflags) & ZF).toBe(ZF);
  });
});
