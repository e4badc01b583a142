// The Engine interface as ImplEngine implements it: step events, raise(), touched(), state()
// round trips, input validation, both vendor profiles.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { baseMemory, layoutState, stepOn, runOn, stateText, u64, RAX, RBX, RCX } from "./helpers.ts";

function kernel(code: number[], setup?: (m: ReturnType<typeof baseMemory>) => void): ArchState {
  const m = baseMemory();
  m.write(0x10000n, code);
  setup?.(m);
  return layoutState(m);
}

describe("ImplEngine as an Engine", () => {
  it("state() after load() is the loaded state", () => {
    const s = kernel([0xf4]);
    const e = new ImplEngine();
    e.load(s, "intel");
    expect(stateText(e.state())).toBe(stateText(s));
    expect(e.state().cpu).toEqual(s.cpu);
  });

  it("step() reports retired, delivered (with vector and error code), halted and io events, with the instruction's bytes", () => {
    // inc rbx; out 0x80, al; in al, 0x60; ud2 (→ #UD handler hlt)
    const e = new ImplEngine();
    e.load(kernel([0x48, 0xff, 0xc3, 0xe6, 0x80, 0xe4, 0x60, 0x0f, 0x0b]), "intel");
    const insn = (...bytes: number[]) => ({ bytes: Uint8Array.from(bytes), length: bytes.length });
    expect(e.step()).toEqual({ kind: "retired", rip: 0x10000n, instruction: insn(0x48, 0xff, 0xc3) });
    expect(e.step()).toEqual({ kind: "io", rip: 0x10003n, direction: "out", port: 0x80, size: 1, value: 0n, instruction: insn(0xe6, 0x80) });
    expect(e.step()).toEqual({ kind: "io", rip: 0x10005n, direction: "in", port: 0x60, size: 1, value: 0xffn, instruction: insn(0xe4, 0x60) });
    expect(e.step()).toEqual({ kind: "delivered", rip: 0x10007n, vector: 6, errorCode: undefined, source: "exception", instruction: insn(0x0f, 0x0b) });
    expect(e.step()).toEqual({ kind: "halted", rip: 0xb060n, instruction: insn(0xf4) });
    // Halted with nothing to wake it: no step, no instruction.
    expect(e.step()).toEqual({ kind: "halted", rip: 0xb061n });
    expect(e.run(100)).toEqual({ reason: "hlt", steps: 0 });
  });

  it("raise(): the latest IRQ wins, an NMI is latched and both wake HLT", () => {
    const e = new ImplEngine();
    // sti; hlt; hlt
    e.load(kernel([0xfb, 0xf4, 0xf4]), "intel");
    expect(e.run(10)).toEqual({ reason: "hlt", steps: 2 });
    e.raise({ irq: 0x21 });
    e.raise({ irq: 0x30 });
    const ev = e.step();
    expect(ev).toEqual({ kind: "delivered", rip: 0x10002n, vector: 0x30, errorCode: undefined, source: "external" });
    expect(e.state().cpu.pendingIrq).toBeNull();
    e.raise({ nmi: true });
    // At the handler's first instruction (not yet run), the NMI is taken.
    expect(e.step()).toEqual({ kind: "delivered", rip: 0xb300n, vector: 2, errorCode: undefined, source: "nmi" });
    expect(e.state().cpu.nmiBlocked).toBe(true);
  });

  it("raise() validates its input", () => {
    const e = new ImplEngine();
    e.load(kernel([0xf4]), "intel");
    expect(() => e.raise({ irq: 256 })).toThrow(RangeError);
    expect(() => e.raise({ irq: -1 })).toThrow(RangeError);
  });

  it("touched() lists the written pages (stack, data, page-table A/D bits), merged and in order", () => {
    // mov [0x30000], rax; push rax
    const e = new ImplEngine();
    e.load(kernel([0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, 0x50, 0xf4]), "intel");
    e.run(10);
    const t = e.touched().map((r) => [r.start, r.end]);
    expect(t).toContainEqual([0x30000n, 0x31000n]);
    expect(t).toContainEqual([0x1f000n, 0x20000n]);
    // The walks set A in the PML4E, PDPTE and PDE (pages 0x1000–0x3fff, merged).
    expect(t).toContainEqual([0x1000n, 0x4000n]);
    expect(t.some(([s]) => s === 0x10000n)).toBe(false);
  });

  it("touched() lists a page first read through an already dirty entry, then written (interpreted and compiled)", () => {
    // The leaf for 0x30000 (the 2 MiB PDE at 0x3000) starts with A and D set, so the read's walk
    // sets nothing; the write that follows must still be seen. Caught: TLB write classes granted
    // by the read's walk let the store skip noteWrite, and the page was missing from touched().
    // mov rax, [0x30000]; mov [0x30000], rbx; hlt
    const s = kernel([0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, 0x48, 0x89, 0x1c, 0x25, 0x00, 0x00, 0x03, 0x00, 0xf4], (m) => {
      const pde = m.read64(0x3000n);
      expect(pde & 0x80n).toBe(0x80n);
      m.write(0x3000n, u64(pde | 0x60n));
    });
    for (const opts of [{ compile: false }, {}]) {
      const e = new ImplEngine(opts);
      e.load(s, "intel");
      expect(e.run(10)).toEqual({ reason: "hlt", steps: 3 });
      expect(e.touched().map((r) => [r.start, r.end])).toContainEqual([0x30000n, 0x31000n]);
    }
  });

  it("load() refuses states outside the model and over the page budget", () => {
    const s = kernel([0xf4]);
    const e = new ImplEngine({ maxMemoryBytes: 64 * 4096 });
    expect(() => e.load({ ...s, cr4: 0x620n | (1n << 12n) }, "intel")).toThrow(RangeError);
    expect(() => e.load({ ...s, efer: 0x101n }, "intel")).toThrow(RangeError);
    const big = new Map(s.memory);
    for (let p = 0x800; p < 0x900; p++) big.set(p, new Uint8Array(4096));
    expect(() => e.load({ ...s, memory: big }, "intel")).toThrow(RangeError);
    expect(() => new ImplEngine({ maxMemoryBytes: 0 })).toThrow(RangeError);
  });

  it("amd profile: SYSRETQ with a non-canonical RCX completes, then faults at CPL 3", () => {
    // mov rcx, 0x0000800000000000; mov r11, 0x202; sysretq
    const code = [0x48, 0xb9, ...u64(0x0000800000000000n), 0x49, 0xc7, 0xc3, 0x02, 0x02, 0x00, 0x00, 0x48, 0x0f, 0x07];
    const intel = runOn(kernel(code), 10, {}, "intel");
    expect(intel.state.cs.selector).toBe(0x08); // #GP in ring 0
    expect(intel.state.rip).toBe(0xb0d1n);
    const amd = runOn(kernel(code), 10, {}, "amd");
    expect(amd.state.cs.selector).toBe(0x08); // #GP delivered from ring 3 to ring 0 ...
    expect(amd.state.rip).toBe(0xb0d1n);
    expect(amd.state.gpr[4]).toBe(0x20000n - 48n); // ... on the RSP0 stack, with the user frame
    const frame = amd.state.memory.get(0x1f)!;
    const at = (o: number) => Number(new DataView(frame.buffer, frame.byteOffset).getBigUint64(o, true));
    expect(at(0xfd8)).toBe(0x800000000000); // saved RIP: the non-canonical target
    expect(at(0xfe0)).toBe(0x2b); // saved CS: user
  });

  it("amd profile: SYSRET keeps the SS hidden attributes; NULL FS load keeps the base", () => {
    // mov ecx, 0x200000; mov r11d, 0x202; xor eax, eax; mov fs, eax; sysretq
    const code = [0xb9, 0x00, 0x00, 0x20, 0x00, 0x41, 0xbb, 0x02, 0x02, 0x00, 0x00, 0x31, 0xc0, 0x8e, 0xe0, 0x48, 0x0f, 0x07];
    const s = kernel(code, (m) => m.write(0x200000n, [0xeb, 0xfe]));
    const withFs = { ...s, fs: { ...s.fs, selector: 0x10, base: 0x1234000n } };
    const amd = runOn(withFs, 10, {}, "amd");
    expect(amd.state.ss.selector).toBe(0x23);
    expect(amd.state.ss.dpl).toBe(0); // the kernel SS attributes survive
    expect(amd.state.fs.base).toBe(0x1234000n);
    const intel = runOn(withFs, 10, {}, "intel");
    expect(intel.state.ss.dpl).toBe(3);
    expect(intel.state.fs.base).toBe(0n);
  });

  it("amd profile: SYSCALL from compatibility mode enters at CSTAR", () => {
    const m = baseMemory();
    m.write(0x200000n, [0x0f, 0x05]);
    m.write(0x12000n, [0xf4]);
    const s = layoutState(m, { user: true });
    const compat = { ...s, cs: { ...s.cs, selector: 0x1b, l: 0, db: 1 } };
    expect(runOn(compat, 5, {}, "amd").state.rip).toBe(0x12001n);
    expect(runOn(compat, 5, {}, "intel").state.rip).toBe(0xb061n); // #UD
  });

  it("a long run of step() and run() agree on a kernel loop with interrupts enabled", () => {
    // sti; loop: inc rbx; add rax, rbx; loop (dec rcx/jnz); hlt
    const code = [0xfb, 0x48, 0xff, 0xc3, 0x48, 0x01, 0xd8, 0xff, 0xc9, 0x75, 0xf6, 0xf4];
    const s = kernel(code);
    const gpr = [...s.gpr];
    gpr[RCX] = 500n;
    const st = { ...s, gpr };
    const a = runOn(st, 10_000, {});
    const b = stepOn(st, 10_000);
    expect(a.stop).toEqual({ reason: "hlt", steps: 1 + 500 * 4 + 1 });
    expect(b.text).toBe(a.text);
    expect(a.state.gpr[RBX]).toBe(500n);
    expect(a.state.gpr[RAX]).toBe(125250n);
  });
});
