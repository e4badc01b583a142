// The page budget of a spec run (contract/limits.ts PAGE_BUDGET; README, Limits and safety): a
// step that needs one more page of guest physical memory is taken back and the run stops with
// `memory-limit`, the same stop, event and wording as impl's.
import { describe, expect, it } from "vitest";
import { SpecEngine } from "../../spec/engine.ts";
import { stateFromMachine } from "../../spec/machine/machine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { kernelMachine, withBytes, withCode } from "../helpers/fixture.ts";

const u64 = (v: bigint): number[] => Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));

/** A kernel that stores one byte into every 4 KiB page from 1 GiB up (PDPT[1] maps 1 GiB there). */
function pageEater() {
  let m = withBytes(kernelMachine(), 0x2008n, u64(0x4000_0000n | 0x83n));
  m = withCode(m, [
    0x48, 0xb8, ...u64(0x4000_0000n), //  mov rax, 0x40000000
    0x88, 0x00, //                        loop: mov [rax], al
    0x48, 0x05, 0x00, 0x10, 0x00, 0x00, // add rax, 0x1000
    0xeb, 0xf6, //                        jmp loop
  ]);
  return stateFromMachine(m);
}

describe("spec's page budget", () => {
  it("a run that needs one more page stops with memory-limit, the store taken back, as on impl", () => {
    const state = pageEater();
    const store = state.rip + 10n;
    const spec = new SpecEngine({ maxMemoryBytes: 1 << 20 });
    spec.load(state, "intel");
    const stop = spec.run(1_000_000);
    expect(stop).toEqual({ reason: "memory-limit", steps: stop.steps, event: { kind: "memory-limit", rip: store, reason: "guest physical memory would exceed 256 pages" } });
    const after = spec.state();
    expect(after.memory.size).toBe(256);
    expect(after.rip).toBe(store);
    // The engine stays usable: the same stop again, nothing run; a single step says the same.
    expect(spec.run(10)).toEqual({ ...stop, steps: 0 });
    expect(spec.step()).toEqual(stop.event);
    expect(spec.state().memory.size).toBe(256);

    const impl = new ImplEngine({ maxMemoryBytes: 1 << 20 });
    impl.load(state, "intel");
    expect(impl.run(1_000_000)).toEqual(stop);
    expect(impl.state().gpr).toEqual(after.gpr);
  });

  it("the budget is checked at load, and must be at least one page", () => {
    const state = pageEater();
    expect(() => new SpecEngine({ maxMemoryBytes: state.memory.size * 4096 - 1 }).load(state, "intel")).toThrow(RangeError);
    expect(() => new SpecEngine({ maxMemoryBytes: 0 })).toThrow(RangeError);
    expect(() => new SpecEngine({ maxMemoryBytes: Number.NaN })).toThrow(RangeError);
  });
});
