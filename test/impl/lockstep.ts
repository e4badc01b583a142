// For directed regressions of divergences the lockstep searches found in impl/: the first step of a
// machine on ImplEngine and on SpecEngine (the reference), so each test checks the SDM answer on
// impl/ and that spec/ gives the same.
import { ImplEngine } from "../../impl/engine.ts";
import { SpecEngine } from "../../spec/engine.ts";
import type { Engine, EngineEvent } from "../../contract/engine.ts";
import { stateFromMachine, type Machine } from "../../spec/machine/machine.ts";

const ENGINES: readonly (() => Engine)[] = [() => new ImplEngine(), () => new SpecEngine()];

/** Loads `m` on each engine and takes one step. */
export function firstStep(m: Machine): { event: EngineEvent; engine: Engine }[] {
  return ENGINES.map((make) => {
    const engine = make();
    engine.load(stateFromMachine(m), "intel");
    return { event: engine.step(), engine };
  });
}

/** `m` with consecutive qwords written at `at`. */
export function withQwords(m: Machine, at: bigint, slots: readonly bigint[]): Machine {
  let memory = m.memory;
  slots.forEach((v, i) => { memory = memory.write(at + 8n * BigInt(i), 8, v); });
  return { ...m, memory };
}
