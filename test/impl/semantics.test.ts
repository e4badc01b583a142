// Directed tests of the rules the vectors do not pin down, named after the reference digest's rule
// IDs or docs/model-choices.md rows; each runs on every engine configuration.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { gate } from "../../guest/index.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { CONFIGS, RAX, RBX, RCX, RDX, baseMemory, layoutState, runOn, u64, type Outcome } from "./helpers.ts";
import type { Memory } from "./helpers.ts";

function runAll(state: ArchState, steps: number, profile: "intel" | "amd" = "intel"): Outcome {
  const outs = CONFIGS.map((c) => runOn(state, steps, c.opts, profile));
  for (const o of outs.slice(1)) {
    expect(o.stop).toEqual(outs[0]!.stop);
    expect(o.text).toBe(outs[0]!.text);
  }
  return outs[0]!;
}

function q(s: ArchState, a: bigint): bigint {
  let v = 0n;
  for (let i = 7n; i >= 0n; i--) {
    const p = s.memory.get(Number((a + i) >> 12n));
    v = (v << 8n) | BigInt(p === undefined ? 0 : p[Number((a + i) & 0xfffn)]!);
  }
  return v;
}

function k(code: number[], setup?: (m: Memory) => void, patch: Partial<ArchState> = {}, regs: Record<number, bigint> = {}): ArchState {
  const m = baseMemory();
  m.write(0x10000n, code);
  setup?.(m);
  const s = layoutState(m);
  const gpr = [...s.gpr];
  for (const [r, v] of Object.entries(regs)) gpr[Number(r)] = v;
  return { ...s, ...patch, gpr };
}

describe("single-step and shadows", () => {
  it("SHADOW-05/06: a trap held by MOV SS survives the INT3 that follows and hits the handler's first instruction", () => {
    // mov ss, ax (AX = 0x10); int3 — TF = 1 from the MOV SS on; #BP gate DPL 0 at CPL 0.
    const s = k([0x8e, 0xd0, 0xcc], undefined, { rflags: 0x102n }, { [RAX]: 0x10n });
    const out = runAll(s, 10);
    expect(out.state.rip).toBe(0xb011n); // #DB handler ran its hlt
    const rsp = out.state.gpr[4]!;
    expect(q(out.state, rsp)).toBe(0xb030n); // #DB frame: the #BP handler's first instruction
    expect(q(out.state, 0x20000n - 40n)).toBe(0x10003n); // #BP frame: RIP after INT3
  });

  it("SHADOW-07: a second MOV SS does not extend the shadow", () => {
    // TF = 1: mov ss, ax; mov ss, ax; inc rbx → one #DB after the second MOV SS's successor? No:
    // the first shadow holds the first trap; the second MOV SS opens none, so #DB comes after it.
    const s = k([0xb8, 0x10, 0, 0, 0, 0x8e, 0xd0, 0x8e, 0xd0, 0x48, 0xff, 0xc3], undefined, {});
    const st = { ...s, rflags: 0x2n };
    const traced = runAll({ ...st, rip: 0x10000n }, 1); // mov eax (no TF yet)
    expect(traced.state.rip).toBe(0x10005n);
    const withTf = runAll({ ...s, rip: 0x10005n, rflags: 0x102n, gpr: s.gpr.map((v, i) => (i === RAX ? 0x10n : v)) }, 10);
    expect(q(withTf.state, 0x20000n - 40n)).toBe(0x10009n);
    expect(withTf.state.gpr[RBX]).toBe(0n);
  });

  it("STI shadow: sti; hlt with an IRQ pending takes it after the HLT", () => {
    const s = k([0xfb, 0xf4, 0xf4], undefined, { cpu: { ...layoutState(baseMemory()).cpu, pendingIrq: 0x30 } });
    const out = runAll(s, 10);
    expect(q(out.state, 0x20000n - 40n)).toBe(0x10002n); // return RIP after the HLT
    expect(out.state.rip).toBe(0xb301n);
  });

  it("SYSRET-09: R11.TF = 1 traps at CPL 3 before the first user instruction", () => {
    // mov ecx, 0x200000; mov r11d, 0x302; sysretq
    const s = k([0xb9, 0, 0, 0x20, 0, 0x41, 0xbb, 0x02, 0x03, 0, 0, 0x48, 0x0f, 0x07], (m) => m.write(0x200000n, [0x48, 0xff, 0xc3]));
    const out = runAll(s, 10);
    expect(out.state.gpr[RBX]).toBe(0n);
    expect(q(out.state, 0x20000n - 40n)).toBe(0x200000n); // #DB frame: RIP = RCX
    expect(q(out.state, 0x20000n - 32n)).toBe(0x2bn); // from CPL 3
  });
});

describe("events", () => {
  it("NMI: blocked from the start of its delivery even when that delivery faults", () => {
    // NMI gate not present → #NP(2·8 + 2 + EXT) = 0x13 delivered instead.
    const s = k([0xeb, 0xfe], (m) => m.write(0x9025n, [0x0e]), { cpu: { ...layoutState(baseMemory()).cpu, pendingNmi: true } });
    const out = runAll(s, 5);
    expect(out.state.rip).toBe(0xb0b1n);
    expect(q(out.state, 0x20000n - 48n)).toBe(0x13n);
    expect(out.state.cpu.nmiBlocked).toBe(true);
    expect(out.state.cpu.pendingNmi).toBe(false);
  });

  it("IRETQ-00: an IRET that faults still unblocks NMI", () => {
    // iretq with NT = 1 → #GP(0); NMI blocked before, unblocked after.
    const s = k([0x48, 0xcf], undefined, { rflags: 0x4002n, cpu: { ...layoutState(baseMemory()).cpu, nmiBlocked: true } });
    const out = runAll(s, 3);
    expect(out.state.rip).toBe(0xb0d1n);
    expect(out.state.cpu.nmiBlocked).toBe(false);
  });

  it("TPR: CR8 holds back IRQs whose class is not above it", () => {
    const cpu = { ...layoutState(baseMemory()).cpu, pendingIrq: 0x21 };
    const blocked = runAll(k([0xfb, 0x90, 0xf4], undefined, { cr8: 2n, cpu }), 10);
    expect(blocked.stop.reason).toBe("hlt");
    expect(blocked.state.cpu.pendingIrq).toBe(0x21);
    const taken = runAll(k([0xfb, 0x90, 0xf4], undefined, { cr8: 2n, cpu: { ...cpu, pendingIrq: 0x31 } }), 10);
    expect(taken.state.rip).toBe(0xb311n);
  });

  it("DF-03: #PF while delivering #PF becomes #DF; CR2 holds the latest address", () => {
    // User read of 0x600000 (not present); RSP0 → 0x600000 too, #DF on IST1.
    const m = baseMemory();
    m.write(0x200000n, [0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00]);
    m.write64(0xa004n, 0x601000n);
    const [lo, hi] = gate(0xb080n, { ist: 1 });
    m.write64(0x9080n, lo);
    m.write64(0x9088n, hi);
    const out = runAll(layoutState(m, { user: true }), 5);
    expect(out.state.rip).toBe(0xb081n);
    expect(out.state.cr2).toBe(0x600ff8n);
    expect(q(out.state, 0x21000n - 48n)).toBe(0n); // #DF error code
  });
});

describe("instructions", () => {
  it("a masked shift count of 0 still writes the destination (32-bit zero-extension, no flags)", () => {
    // mov rax, -1; stc; shl eax, 0 (C1 E0 00); hlt
    const out = runAll(k([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0xf9, 0xc1, 0xe0, 0x00, 0xf4]), 10);
    expect(out.state.gpr[RAX]).toBe(0xffffffffn);
    expect(out.state.rflags & 1n).toBe(1n);
  });

  it("I/O bitmap: OUT allowed by a clear bit, #GP(0) for a set bit (two-byte read)", () => {
    // TSS limit 0x1000, map base 0x68: port 0x80 clear, port 0x81 set.
    const setup = (m: Memory) => {
      m.write(0xa066n, [0x68, 0x00]);
      m.write(0xa068n + 0x10n, [0x02]);
      m.write(0x200000n, [0xe6, 0x80, 0xe6, 0x81, 0xeb, 0xfe]);
    };
    const m = baseMemory();
    setup(m);
    const s = layoutState(m, { user: true });
    const out = runAll({ ...s, tr: { ...s.tr, limit: 0x1000 } }, 10);
    expect(out.state.rip).toBe(0xb0d1n);
    expect(q(out.state, 0x20000n - 48n)).toBe(0n);
    expect(q(out.state, 0x20000n - 40n)).toBe(0x200002n);
  });

  it("a write crossing into a faulting page writes nothing but keeps the first page's A/D bits", () => {
    // PT 0x4000: 0x600000 → frame 0x700 R/W (A, D clear), 0x601000 not present.
    // mov rax, 0x600ffc; mov qword [rax], rdx
    const s = k([0x48, 0xc7, 0xc0, 0xfc, 0x0f, 0x60, 0x00, 0x48, 0x89, 0x10, 0xf4], (m) => m.write64(0x4000n, 0x700003n), {}, { [RDX]: -1n & 0xffffffffffffffffn });
    const out = runAll(s, 5);
    expect(out.state.cr2).toBe(0x601000n);
    expect(q(out.state, 0x700ff8n)).toBe(0n);
    expect(q(out.state, 0x4000n)).toBe(0x700063n);
  });

  it("MSRs the model does not hold stop the run as unsupported; unknown ones are #GP(0)", () => {
    const tsc = runAll(k([0xb9, 0x10, 0, 0, 0, 0x0f, 0x32, 0xf4]), 5);
    expect(tsc.stop.reason).toBe("unsupported");
    expect(tsc.state.rip).toBe(0x10005n);
    const unknown = runAll(k([0xb9, 0x11, 0, 0, 0, 0x0f, 0x32, 0xf4]), 5);
    expect(unknown.state.rip).toBe(0xb0d1n);
  });

  it("decoding: #UD sets, LOCK misuse, the 15-byte limit and unsupported bytes", () => {
    const ud = (code: number[]) => runAll(k(code), 3).state.rip;
    expect(ud([0x82, 0xc0, 0x01])).toBe(0xb061n);
    expect(ud([0xf0, 0x48, 0x01, 0xc0])).toBe(0xb061n); // LOCK with a register destination
    expect(ud([0xff, 0xd8])).toBe(0xb061n); // FF /3 register form
    expect(ud([0xc7, 0xc8, 1, 2, 3, 4])).toBe(0xb061n); // C7 /1
    // 15 prefixes then an opcode: the 16th byte is never fetched → #GP(0)
    const long = runAll(k([...new Array<number>(15).fill(0x66), 0x90]), 3);
    expect(long.state.rip).toBe(0xb0d1n);
    const e = new ImplEngine();
    e.load(k([0x90, 0x0f, 0xa2]), "intel"); // nop; cpuid
    const stop = e.run(10);
    expect(stop.reason).toBe("unsupported");
    expect(stop.steps).toBe(1);
    expect(stop.event?.rip).toBe(0x10001n);
    expect(Array.from(stop.event?.kind === "unsupported" ? stop.event.bytes : [])).toEqual([0x0f, 0xa2]);
  });

  it("64-bit arithmetic on halves: MUL/IMUL/DIV at the edges", () => {
    // mov rax, -1; mov rcx, -1; mul rcx → rdx:rax = 0xfffffffffffffffe_0000000000000001
    const mul = runAll(k([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48, 0xf7, 0xe1, 0xf4]), 10);
    expect(mul.state.gpr[RAX]).toBe(1n);
    expect(mul.state.gpr[RDX]).toBe(0xfffffffffffffffen);
    // imul rcx (signed): (-1)·(-1) = 1, rdx = 0, CF = OF = 0
    const imul = runAll(k([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48, 0xf7, 0xe9, 0xf4]), 10);
    expect(imul.state.gpr[RDX]).toBe(0n);
    expect(imul.state.rflags & 0x801n).toBe(0n);
    // div: rdx:rax = 2^64 / 3
    const div = runAll(k([0x48, 0x31, 0xc0, 0xba, 1, 0, 0, 0, 0xb9, 3, 0, 0, 0, 0x48, 0xf7, 0xf1, 0xf4]), 10);
    expect(div.state.gpr[RAX]).toBe(0x5555555555555555n);
    expect(div.state.gpr[RDX]).toBe(1n);
    // idiv overflow → #DE
    const de = runAll(k([0x48, 0xb8, ...u64(1n << 63n), 0x48, 0x99, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48, 0xf7, 0xf9, 0xf4]), 10);
    expect(de.state.rip).toBe(0xb001n);
    expect(de.state.gpr[RCX]).toBe(0xffffffffffffffffn);
  });
});
