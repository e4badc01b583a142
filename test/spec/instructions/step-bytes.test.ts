// The general subset through step() on real instruction bytes (decoder + semantics + step loop).
import { describe, expect, it } from "vitest";
import { step, run } from "../../../spec/index.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RAX, RCX, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { kernelMachine, userMachine, withCode, withRegs, withBytes } from "../../helpers/fixture.ts";

const stop = { delivery: "stop" } as const;

function one(m: Machine, bytes: number[]) {
  return step(withCode(m, bytes), stop);
}

describe("general instructions through step()", () => {
  it("ADD RAX, RBX (48 01 D8) retires with the sum, flags and RIP + 3", () => {
    const r = one({ ...withRegs(kernelMachine(), { rax: (1n << 63n) - 1n, rbx: 1n }), rflags: 2n }, [0x48, 0x01, 0xd8]);
    expect(r.event.kind).toBe("retired");
    expect(r.state.gpr[RAX]).toBe(1n << 63n);
    expect(r.state.rflags).toBe(2n | RFLAGS.OF | RFLAGS.SF | RFLAGS.AF | RFLAGS.PF);
    expect(r.state.rip).toBe(0x10003n);
  });

  it("a loop (mov ecx,5; xor eax,eax; 1: add eax,ecx; dec ecx; jnz 1b) sums 5+4+3+2+1", () => {
    const code = [0xb9, 5, 0, 0, 0, 0x31, 0xc0, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xfa];
    const r = run(withCode(kernelMachine(), code), { maxSteps: 2 + 3 * 5, delivery: "stop" });
    expect(r.state.gpr[RAX]).toBe(15n);
    expect(r.state.gpr[RCX]).toBe(0n);
    expect(r.state.rip).toBe(0x10000n + BigInt(code.length));
    expect(r.state.rflags & RFLAGS.ZF).toBe(RFLAGS.ZF);
  });

  it("CALL rel32 / RET round trip", () => {
    // 0x10000: call +1 (to 0x10006); 0x10005: nop; 0x10006: ret
    const m0 = withCode(withRegs(kernelMachine(), { rsp: 0x1f000n }), [0xe8, 1, 0, 0, 0, 0x90, 0xc3]);
    const called = step(m0, stop);
    expect(called.state.rip).toBe(0x10006n);
    expect(called.state.memory.read(0x1eff8n, 8)).toBe(0x10005n);
    const back = step(called.state, stop);
    expect(back.state.rip).toBe(0x10005n);
    expect(back.state.gpr[RSP]).toBe(0x1f000n);
  });

  it("ADD qword [0x600000], 1 on a not-present page: #PF with W=1 (48 83 04 25 00 00 60 00 01)", () => {
    const r = one(kernelMachine(), [0x48, 0x83, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, 0x01]);
    expect(r.event).toMatchObject({ kind: "fault", fault: { vector: 14, errorCode: 0b010, address: 0x600000n } });
    expect(r.state.rip).toBe(0x10000n);
  });

  it("DIV EBX with EBX = 0 (F7 F3) → #DE", () => {
    const r = one(withRegs(kernelMachine(), { rax: 7n }), [0xf7, 0xf3]);
    expect(r.event).toMatchObject({ kind: "fault", fault: { vector: 0, rule: "DIV-01" } });
    expect(r.state.gpr[RAX]).toBe(7n);
  });

  it("UD2 (0F 0B) → #UD", () => {
    expect(one(kernelMachine(), [0x0f, 0x0b]).event).toMatchObject({ kind: "fault", fault: { vector: 6 } });
  });

  it("IN AL, 0x60 (E4 60) at CPL 3 with IOPL 0 and no bitmap → #GP(0); at CPL 0 an io event", () => {
    expect(one({ ...userMachine(), rflags: 0x202n }, [0xe4, 0x60]).event).toMatchObject({ kind: "fault", fault: { vector: 13, errorCode: 0, rule: "IO-03" } });
    const r = step(withCode(kernelMachine(), [0xe4, 0x60]), { ...stop, portIn: () => 0x1cn });
    expect(r.event).toMatchObject({ kind: "io", direction: "in", port: 0x60, size: 1, value: 0x1cn });
    expect(r.state.gpr[RAX]! & 0xffn).toBe(0x1cn);
  });

  it("PUSHFQ; POPFQ at CPL 3 cannot clear IF or raise IOPL (9C, 9D)", () => {
    const u = { ...userMachine(), rflags: 0x202n };
    const pushed = one(u, [0x9c]);
    expect(pushed.state.memory.read(0x210000n - 8n, 8)).toBe(0x202n);
    const image = 2n | (3n << 12n) | RFLAGS.CF; // IF = 0, IOPL = 3
    const m = withBytes({ ...u, gpr: u.gpr.map((v, i) => (i === RSP ? 0x20fff8n : v)) }, 0x20fff8n, Array.from({ length: 8 }, (_, i) => Number((image >> BigInt(8 * i)) & 0xffn)));
    const popped = one(m, [0x9d]);
    expect(popped.state.rflags).toBe(0x202n | RFLAGS.CF);
  });

  it("FLAGS-03: POPFQ that sets TF retires without a trap; the trap follows the next instruction", () => {
    const image = 2n | RFLAGS.TF;
    const m0 = withBytes(withRegs(kernelMachine(), { rsp: 0x1eff8n }), 0x1eff8n, Array.from({ length: 8 }, (_, i) => Number((image >> BigInt(8 * i)) & 0xffn)));
    const popf = step(withCode(m0, [0x9d, 0x90]), stop);
    expect(popf.event.kind).toBe("retired");
    expect(popf.state.rflags & RFLAGS.TF).toBe(RFLAGS.TF);
    expect(popf.state.cpu.pendingDebugTrap).toBe(false);
    const nop = step(popf.state, stop);
    expect(nop.event.kind).toBe("retired");
    expect(nop.state.cpu.pendingDebugTrap).toBe(true);
  });

  it("JMP to a non-canonical address through a register (FF E0) → #GP(0) at the JMP", () => {
    const r = one(withRegs(kernelMachine(), { rax: 0x8000_0000_0000n }), [0xff, 0xe0]);
    expect(r.event).toMatchObject({ kind: "fault", rip: 0x10000n, fault: { vector: 13, errorCode: 0, rule: "BRANCH-01" } });
  });
});
