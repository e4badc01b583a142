// Segmentation in compatibility mode (docs/model-choices.md, "Compatibility-mode segmentation"):
// SEG-CHECK-UNUSABLE, -TYPE, -LIMIT, -LINEAR, -FETCH, -STACK and BRANCH-04, through real
// instructions; and the transfers into compatibility mode (IRETQ-12/15: EIP against the CS limit;
// RETF-08/10, JMPF-08/09: the whole target against it; a popped RSP as bits 31:0).
import { describe, expect, it } from "vitest";
import { GP, SS } from "../../../spec/fault.ts";
import { machineFromState, type Machine } from "../../../spec/machine/machine.ts";
import { RAX, RBX, RSP } from "../../../spec/machine/registers.ts";
import type { Segment } from "../../../contract/state.ts";
import { step } from "../../../spec/step/step.ts";
import { guestState, kernelMachine, USER_CS32, withCode, withRegs } from "../../helpers/fixture.ts";
import { descriptor, expectFault, retired, stepBytes } from "../transitions/build-system.ts";

/** CPL-3 compatibility-mode machine of the shared layout (CS 0x1b flat 32-bit, SS 0x23). */
const compat = (): Machine => machineFromState(guestState({ ring: 3, compat: true }));
const data = (over: Partial<Segment>): Segment => ({ selector: 0x23, base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0, ...over });
const UNUSABLE: Segment = { selector: 0, base: 0n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };
const LOAD_EAX_EBX = [0x8b, 0x03]; // mov eax, [ebx]
const STORE_EBX_EAX = [0x89, 0x03]; // mov [ebx], eax
const INC_EBX = [0xff, 0x03]; // inc dword [ebx]
const PUSH_EAX = [0x50];
const DATA = 0x220000n;

describe("data accesses", () => {
  it("SEG-CHECK-UNUSABLE: through an unusable DS #GP(0); an unusable SS makes a push #SS(0)", () => {
    const m = withRegs({ ...compat(), ds: UNUSABLE }, { rbx: DATA });
    expectFault(stepBytes(m, LOAD_EAX_EBX), m, GP, 0, "SEG-CHECK-UNUSABLE");
    const s = { ...compat(), ss: UNUSABLE };
    expectFault(stepBytes(s, PUSH_EAX), s, SS, 0, "SEG-CHECK-UNUSABLE");
  });
  it("SEG-CHECK-TYPE: writes to read-only data (a read-modify-write too) and reads of execute-only code are #GP(0); reads of read-only data pass", () => {
    const ro = withRegs({ ...compat(), ds: data({ type: 1 }) }, { rbx: DATA });
    expectFault(stepBytes(ro, STORE_EBX_EAX), ro, GP, 0, "SEG-CHECK-TYPE");
    expectFault(stepBytes(ro, INC_EBX), ro, GP, 0, "SEG-CHECK-TYPE");
    expect(retired(stepBytes(ro, LOAD_EAX_EBX)).rip).toBe(ro.rip + 2n);
    const viaCs = withRegs({ ...compat(), cs: { ...USER_CS32, type: 8 } }, { rbx: DATA });
    expectFault(stepBytes(viaCs, [0x2e, ...LOAD_EAX_EBX]), viaCs, GP, 0, "SEG-CHECK-TYPE");
    const readable = withRegs(compat(), { rbx: DATA });
    expect(retired(stepBytes(readable, [0x2e, ...LOAD_EAX_EBX])).rip).toBe(readable.rip + 3n);
    expectFault(stepBytes(readable, [0x2e, ...STORE_EBX_EAX]), readable, GP, 0, "SEG-CHECK-TYPE");
  });
  it("SEG-CHECK-LIMIT: expand-up: the last byte must be within the limit; SS accesses give #SS(0)", () => {
    const m = (ebx: bigint) => withRegs({ ...compat(), ds: data({ limit: 0xfff, g: 0, base: DATA }) }, { rbx: ebx });
    expect(retired(stepBytes(m(0xffcn), LOAD_EAX_EBX)).rip).toBeGreaterThan(0n);
    expectFault(stepBytes(m(0xffdn), LOAD_EAX_EBX), m(0xffdn), GP, 0, "SEG-CHECK-LIMIT");
    // [ebp] defaults to SS.
    const s = withRegs({ ...compat(), ss: data({ limit: 0xfff, g: 0 }) }, { rbp: 0x1000n });
    expectFault(stepBytes(s, [0x8b, 0x45, 0x00]), s, SS, 0, "SEG-CHECK-LIMIT");
  });
  it("SEG-CHECK-LIMIT: expand-down: offsets above the limit, up to 0xFFFFFFFF (B = 1) or 0xFFFF (B = 0)", () => {
    const down = (ebx: bigint, db: number) => withRegs({ ...compat(), ds: data({ type: 7, limit: 0xfff, g: 0, db, base: 0x200000n }) }, { rbx: ebx });
    expectFault(stepBytes(down(0xfffn, 1), LOAD_EAX_EBX), down(0xfffn, 1), GP, 0, "SEG-CHECK-LIMIT");
    expect(retired(stepBytes(down(0x1000n, 1), LOAD_EAX_EBX)).rip).toBeGreaterThan(0n);
    expectFault(stepBytes(down(0xfffe_0000n, 0), LOAD_EAX_EBX), down(0xfffe_0000n, 0), GP, 0, "SEG-CHECK-LIMIT");
    expectFault(stepBytes(down(0xffff_fffen, 1), LOAD_EAX_EBX), down(0xffff_fffen, 1), GP, 0, "SEG-CHECK-LIMIT");
  });
  it("SEG-CHECK-LINEAR: linear = (base + EA) mod 2^32, FS and GS included (their base's low 32 bits)", () => {
    const m0 = compat();
    const memory = m0.memory.write(DATA + 0x10n, 4, 0x1111_2222n);
    const viaDs = withRegs({ ...m0, memory, ds: data({ base: 0xffff_f000n }) }, { rbx: DATA + 0x1010n });
    expect(retired(stepBytes(viaDs, LOAD_EAX_EBX)).gpr[RAX]).toBe(0x1111_2222n);
    const viaFs = withRegs({ ...m0, memory, fs: data({ base: 0x1_0000_0000n + DATA }) }, { rbx: 0x10n });
    expect(retired(stepBytes(viaFs, [0x64, ...LOAD_EAX_EBX])).gpr[RAX]).toBe(0x1111_2222n);
  });
});

describe("stack", () => {
  it("SEG-CHECK-STACK: SS.B = 1: ESP, written zero-extended into RSP", () => {
    const m = retired(stepBytes(withRegs(compat(), { rsp: 0xffff_ffff_0021_0000n }), PUSH_EAX));
    expect(m.gpr[RSP]).toBe(0x20_fffcn);
  });
  it("SEG-CHECK-STACK: SS.B = 0: SP, RSP bits 63:16 kept; SP wraps within 64 KiB", () => {
    const m0 = withRegs({ ...compat(), ss: data({ db: 0, limit: 0xffff, g: 0, base: 0x200000n }) }, { rsp: 0x1234_5678_9abc_0000n, rax: 0xaabbccddn });
    const m = retired(stepBytes(m0, PUSH_EAX));
    expect(m.gpr[RSP]).toBe(0x1234_5678_9abc_fffcn);
    expect(m.memory.read(0x200000n + 0xfffcn, 4)).toBe(0xaabbccddn);
  });
  it("SEG-CHECK-LIMIT: a push below an expand-up SS limit is #SS(0) and moves nothing", () => {
    const m = withRegs({ ...compat(), ss: data({ limit: 0x210000 - 1, g: 0 }) }, { rsp: 0x21_0002n });
    expectFault(stepBytes(m, PUSH_EAX), m, SS, 0, "SEG-CHECK-LIMIT");
  });
});

describe("instruction fetch and near branches", () => {
  it("SEG-CHECK-FETCH: a byte of the instruction beyond the CS limit is #GP(0), remembered decode or not", () => {
    const base = withCode(withRegs(compat(), { rbx: DATA }), [0x8b, 0x03]);
    expect(retired(step(base)).rip).toBe(base.rip + 2n); // decoded and remembered
    const tight = { ...base, cs: { ...base.cs, limit: Number(base.rip) } };
    const r = step(tight, { delivery: "stop" });
    expect(r.event).toMatchObject({ kind: "fault", fault: { vector: GP, errorCode: 0, rule: "SEG-CHECK-FETCH" } });
    const beyond = { ...base, cs: { ...base.cs, limit: Number(base.rip) - 1 } };
    expect(step(beyond, { delivery: "stop" }).event).toMatchObject({ kind: "fault", fault: { vector: GP, rule: "SEG-CHECK-FETCH" } });
  });
  it("BRANCH-04: a near JMP/CALL/RET target beyond the CS limit raises #GP(0) at the branch, nothing pushed or popped", () => {
    const m = { ...compat(), cs: { ...compat().cs, limit: 0x20_0fff } };
    expectFault(stepBytes(m, [0xe9, 0x00, 0x10, 0x00, 0x00]), m, GP, 0, "BRANCH-04");
    expectFault(stepBytes(m, [0xe8, 0x00, 0x10, 0x00, 0x00]), m, GP, 0, "BRANCH-04");
    const withReturn = { ...m, memory: m.memory.write(m.gpr[RSP]!, 4, 0x30_0000n) };
    expectFault(stepBytes(withReturn, [0xc3]), withReturn, GP, 0, "BRANCH-04");
    expect(retired(stepBytes(m, [0xe9, 0x00, 0x01, 0x00, 0x00])).rip).toBe(m.rip + 5n + 0x100n);
  });
});

describe("transfers into compatibility mode", () => {
  /** Kernel (CPL 0, 64-bit) with quadwords at RSP. */
  const withSlots = (slots: readonly bigint[], m: Machine = kernelMachine()): Machine => {
    let memory = m.memory;
    slots.forEach((v, i) => (memory = memory.write(0x1f000n + 8n * BigInt(i), 8, v)));
    return withRegs({ ...m, memory }, { rsp: 0x1f000n });
  };
  it("IRETQ-12 / IRETQ-14: IRETQ to a 32-bit CS checks EIP, not the full RIP, against the limit, and RIP becomes EIP", () => {
    const m = retired(stepBytes(withSlots([0x1_0020_0000n, 0x1bn, 0x202n, 0x21_0000n, 0x23n]), [0x48, 0xcf]));
    expect(m.rip).toBe(0x20_0000n);
    expect(m.cs.selector).toBe(0x1b);
  });
  it("IRETQ-15: IRETQ to a 32-bit CS loads the popped RSP's bits 31:0", () => {
    const m = retired(stepBytes(withSlots([0x20_0000n, 0x1bn, 0x202n, 0xffff_8000_0021_0000n, 0x23n]), [0x48, 0xcf]));
    expect(m.gpr[RSP]).toBe(0x21_0000n);
  });
  it("IRETQ-12: an EIP beyond a 32-bit CS limit is #GP(0)", () => {
    const start = withSlots([0x20_0000n, 0x1bn, 0x202n, 0x21_0000n, 0x23n]);
    const narrow = { ...start, memory: start.memory.write(start.gdtr.base + 0x18n, 8, descriptor({ type: 11, dpl: 3, db: 1, g: 0, limit: 0xfffff })) };
    expectFault(stepBytes(narrow, [0x48, 0xcf]), narrow, GP, 0, "IRETQ-12");
  });
  it("RETF-10: issue 8 divergence B: LRETQ to 32-bit ring 3 with a popped RSP of 0x100000000 gives RSP = 0 (bits 31:0)", () => {
    const m = retired(stepBytes(withSlots([0x20_0000n, 0x1bn, 0x1_0000_0000n, 0x23n]), [0x48, 0xcb]));
    expect(m.gpr[RSP]).toBe(0n);
    expect(m.rip).toBe(0x20_0000n);
  });
  it("RETF-10: the imm16 release on a 32-bit target wraps at the new SS.B width", () => {
    const start = withSlots([0x20_0000n, 0x1bn, 0n, 0n, 0x1_ffff_fff8n, 0x23n]);
    const m = retired(stepBytes(start, [0x48, 0xca, 0x10, 0x00]));
    expect(m.gpr[RSP]).toBe(0x8n);
  });
  it("RETF-08: a same-level far RET to a 32-bit CS checks the whole popped RIP: above 4 GiB is #GP(0), not cut to EIP", () => {
    const high = withSlots([0x5_0001_0800n, 0x40n]);
    expectFault(stepBytes(high, [0x48, 0xcb]), high, GP, 0, "RETF-08");
    const m = retired(stepBytes(withSlots([0x1_0800n, 0x40n]), [0x48, 0xcb]));
    expect(m.rip).toBe(0x1_0800n);
    expect(m.cs).toMatchObject({ selector: 0x40, l: 0, db: 1 });
  });
  it("JMPF-08 / JMPF-09: a far JMP m16:64 to a 32-bit CS checks the whole offset (above 4 GiB: #GP(0)) and loads it", () => {
    const m0 = kernelMachine();
    const far = (offset: bigint): Machine =>
      withRegs({ ...m0, memory: m0.memory.write(0x30000n, 8, offset).write(0x30008n, 2, 0x40n) }, { rbx: 0x30000n });
    const high = far(0x7_0001_0800n);
    expectFault(stepBytes(high, [0x48, 0xff, 0x2b]), high, GP, 0, "JMPF-08");
    const m = retired(stepBytes(far(0x1_0800n), [0x48, 0xff, 0x2b]));
    expect(m.rip).toBe(0x1_0800n);
    expect(m.cs.selector).toBe(0x40);
  });
  it("RETF-01: a far RET from compatibility mode reads its slots through SS: beyond the SS limit it is #SS(0)", () => {
    const m0 = compat();
    const narrow = withRegs({ ...m0, ss: data({ limit: 0x21_0000 + 4, g: 0 }) }, { rsp: 0x21_0000n });
    expectFault(stepBytes(narrow, [0xcb]), narrow, SS, 0, "SEG-CHECK-LIMIT");
    void RBX;
  });
});
