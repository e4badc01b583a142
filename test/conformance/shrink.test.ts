// Shrinking a failing case (conformance/campaign/run.ts shrinkCase): a candidate that builds a case
// already judged in the shrink takes that verdict instead of another lockstep run. Checked in
// process (spec against impl with a planted bug): every lockstep run of the shrink loads a case
// no earlier run loaded but for the last (which runs the minimal case again on purpose), and the
// shrink still ends at the minimal case.
import { describe, expect, it } from "vitest";
import { asAsync } from "../../contract/async.ts";
import type { AsyncEngine } from "../../contract/engine.ts";
import { stateToJson, type ArchState } from "../../contract/state.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { PlantedEngine, plantedBug } from "../../conformance/planted.ts";
import { caseId, caseValue } from "../../conformance/campaign/cases.ts";
import { familyByName, type Family } from "../../conformance/campaign/families.ts";
import { EngineHolder, builtCaseKey, runCase, shrinkCase, type CaseSettings } from "../../conformance/campaign/run.ts";
import { servedCapabilities } from "../../engines/process/server.ts";

const syscall = familyByName("syscall")!;
const settings: CaseSettings = {
  seed: 4, families: [syscall as Family], profile: undefined, every: 1, rule: "architectural", timeoutMs: 30_000,
  expected: new Set(["HLT-06"]), gaps: [], shrinkRuns: 400, shrinkMs: 60_000,
};

/** Engine B: impl with SYSRET's R11 mask left out, recording each state it is loaded with. */
function recordingPlanted(loads: string[]): AsyncEngine {
  const engine = asAsync(new PlantedEngine(new ImplEngine(), plantedBug("sysret-no-r11-mask")!), servedCapabilities("impl with sysret-no-r11-mask", false));
  const load = engine.load.bind(engine);
  engine.load = async (state: ArchState, profile) => {
    loads.push(JSON.stringify([profile, stateToJson(state)]));
    return load(state, profile);
  };
  return engine;
}

describe("shrinking", () => {
  it("runs each distinct candidate once, and ends at the minimal case", async () => {
    const a = new EngineHolder({ name: "spec", open: async () => asAsync(new SpecEngine(), servedCapabilities("spec", false)) });
    const loads: string[] = [];
    const b = new EngineHolder({ name: "planted", open: async () => recordingPlanted(loads) });
    // Case 1 of seed 4 reaches the bug (as in test/conformance/planted.test.ts).
    const found = await runCase(a, b, settings, 1);
    expect(found.status).toBe("fail");
    expect(found.rule).toBe("SYSRET-05");
    loads.length = 0;
    const result = await shrinkCase(a, b, settings, caseId(settings.families, settings.seed, 1), { rule: found.rule!, signature: found.signature! });
    expect(result).not.toBeNull();
    expect(syscall.size(result!.value)).toBe(1);
    expect(result!.judged.rule).toBe("SYSRET-05");
    // One load a lockstep run; `runs` counts them, and the final run is of the minimal case.
    expect(loads.length).toBe(result!.runs + 1);
    expect(new Set(loads.slice(0, -1)).size).toBe(loads.length - 1);
    expect(loads.at(-1)).toBe(JSON.stringify([result!.built.profile, stateToJson(result!.built.state)]));
  }, 60_000);

  it("a built case's key changes with anything a lockstep run depends on", () => {
    const built = syscall.build(caseValue(caseId([syscall], 4, 1)));
    const key = builtCaseKey(built, settings);
    expect(builtCaseKey(syscall.build(caseValue(caseId([syscall], 4, 1))), settings)).toBe(key);
    const page = [...built.state.memory.keys()][0]!;
    const memory = new Map(built.state.memory);
    const changed = new Uint8Array(built.state.memory.get(page)!);
    changed[4095] = changed[4095]! ^ 1;
    memory.set(page, changed);
    const variants = [
      { ...built, state: { ...built.state, memory } },
      { ...built, state: { ...built.state, gpr: built.state.gpr.map((v, i) => (i === 3 ? v ^ 1n : v)) } },
      { ...built, state: { ...built.state, rflags: built.state.rflags ^ 0x100n } },
      { ...built, profile: built.profile === "intel" ? ("amd" as const) : ("intel" as const) },
      { ...built, maxSteps: built.maxSteps + 1 },
      { ...built, raises: [{ rip: built.state.rip, event: { nmi: true as const } }] },
    ];
    const keys = variants.map((v) => builtCaseKey(v, settings));
    for (const k of keys) expect(k).not.toBe(key);
    expect(new Set(keys).size).toBe(keys.length);
    // A campaign's vendor override is what the engines run.
    expect(builtCaseKey(built, { ...settings, profile: "amd" })).not.toBe(builtCaseKey(built, { ...settings, profile: "intel" }));
    // The profile the lockstep runs is the built case's, even where the campaign names one.
    const other = built.profile === "intel" ? ("amd" as const) : ("intel" as const);
    expect(builtCaseKey({ ...built, profile: other }, { ...settings, profile: "intel" })).not.toBe(builtCaseKey(built, { ...settings, profile: "intel" }));
  });
});
