// The decoder (impl/decode.ts): #UD encodings, LOCK misuse, the 15-byte limit, and bytes outside
// the model stopping the run as unsupported with the bytes named.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { kernel, runAll, type Memory } from "./helpers.ts";
import { runAllWithSpec } from "./against-spec.ts";

/** A kernel-mode state: `code` at 0x10000, memory `setup`, state fields `patch`, registers `regs`. */
function k(code: number[], setup?: (m: Memory) => void, patch: Partial<ArchState> = {}, regs: Record<number, bigint> = {}): ArchState {
  return kernel(code, setup, regs, patch);
}

describe("decoding", () => {
  it("decoding: #UD sets, LOCK misuse, the 15-byte limit and unsupported bytes", () => {
    const ud = (code: number[]) => runAll(k(code), 3).state.rip;
    expect(ud([0x82, 0xc0, 0x01])).toBe(0xb061n);
    expect(ud([0xf0, 0x48, 0x01, 0xc0])).toBe(0xb061n); // LOCK with a register destination
    expect(ud([0xff, 0xd8])).toBe(0xb061n); // FF /3 register form
    expect(ud([0xc7, 0xc8, 1, 2, 3, 4])).toBe(0xb061n); // C7 /1
    // C6 /7 with r/m = AH (C6 FC ib) is reserved, not XABORT (C6 F8 ib, r/m = AL): a campaign found
    // impl taking AH's internal register number (REG_AH) for r/m 0 (conform --seed 4242 --case 129163).
    expect(runAllWithSpec(k([0xc6, 0xfc, 0x01]), 3).state.rip).toBe(0xb061n);
    expect(runAllWithSpec(k([0xc6, 0xff, 0x01]), 3).state.rip).toBe(0xb061n); // r/m = BH
    const xabort = new ImplEngine();
    xabort.load(k([0xc6, 0xf8, 0x01]), "intel");
    expect(xabort.step().kind).toBe("unsupported"); // XABORT itself stays outside the model
    // 15 prefixes then an opcode: the 16th byte is never fetched → #GP(0)
    const long = runAll(k([...new Array<number>(15).fill(0x66), 0x90]), 3);
    expect(long.state.rip).toBe(0xb0d1n);
    const e = new ImplEngine();
    e.load(k([0x90, 0x0f, 0xa4, 0xc0, 0x01]), "intel"); // nop; shld eax, eax, 1 (outside the model)
    const stop = e.run(10);
    expect(stop.reason).toBe("unsupported");
    expect(stop.steps).toBe(1);
    expect(stop.event?.rip).toBe(0x10001n);
    expect(Array.from(stop.event?.kind === "unsupported" ? stop.event.bytes : [])).toEqual([0x0f, 0xa4]);
  });
});
