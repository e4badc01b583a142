// The undefined-flags table: its masks agree with the SDM's "Flags Affected" and with what the
// semantics actually vary.
import { describe, expect, it } from "vitest";
import { RFLAGS } from "../../../spec/machine/registers.ts";
import { UNDEFINED_FLAGS, undefinedFlags } from "../../../spec/instructions/undefined-flags.ts";

const { CF, PF, AF, ZF, SF, OF } = RFLAGS;

describe("undefined flags per mnemonic", () => {
  it("lists the SDM's undefined flags for the logic, multiply, divide and bit-test groups", () => {
    expect(UNDEFINED_FLAGS.and?.mask).toBe(AF);
    expect(UNDEFINED_FLAGS.test?.mask).toBe(AF);
    expect(UNDEFINED_FLAGS.mul?.mask).toBe(SF | ZF | AF | PF);
    expect(UNDEFINED_FLAGS.imul?.mask).toBe(SF | ZF | AF | PF);
    expect(UNDEFINED_FLAGS.div?.mask).toBe(CF | PF | AF | ZF | SF | OF);
    expect(UNDEFINED_FLAGS.bts?.mask).toBe(OF | SF | AF | PF);
  });
  it("fully defined instructions have no entry", () => {
    for (const m of ["add", "adc", "sub", "sbb", "cmp", "neg", "inc", "dec", "not", "mov", "popf"] as const) {
      expect(undefinedFlags(m), m).toBe(0n);
    }
  });
  it("shifts: count 0 → none; count 1 → AF; larger → OF and AF; CF too for SHL/SHR once the count reaches the width", () => {
    expect(undefinedFlags("shl", { operandSize: 4, count: 0n })).toBe(0n);
    expect(undefinedFlags("shl", { operandSize: 4, count: 32n })).toBe(0n); // masked to 0
    expect(undefinedFlags("shl", { operandSize: 4, count: 1n })).toBe(AF);
    expect(undefinedFlags("sar", { operandSize: 4, count: 5n })).toBe(AF | OF);
    expect(undefinedFlags("shr", { operandSize: 1, count: 8n })).toBe(AF | OF | CF);
    expect(undefinedFlags("shl", { operandSize: 1, count: 7n })).toBe(AF | OF);
    expect(undefinedFlags("shl", { operandSize: 8, count: 63n })).toBe(AF | OF);
  });
  it("rotates: OF only, and only for counts other than 1", () => {
    expect(undefinedFlags("rol", { operandSize: 2, count: 1n })).toBe(0n);
    expect(undefinedFlags("rcr", { operandSize: 1, count: 9n })).toBe(OF);
    expect(undefinedFlags("ror")).toBe(OF);
  });
  it("every entry explains the value the model produces", () => {
    for (const [m, e] of Object.entries(UNDEFINED_FLAGS)) expect(e?.produced.length, m).toBeGreaterThan(5);
  });
});
