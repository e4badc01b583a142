// The devices inside impl/ (impl/devices.ts, docs/devices.md): the console (0xE9), the exit port
// (0xF4) and the instruction-counting timer — which must tick at exactly the same instruction on
// every configuration, compiled blocks and batched string iterations included.
import { describe, expect, it } from "vitest";
import { Code, Program, Register as R, gate } from "../../guest/index.ts";
import { ImplEngine } from "../../impl/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent } from "../../contract/engine.ts";
import { RAX, RBX, RCX, RDI, baseMemory, kernel, layoutState, runAll, stepOn, type Memory } from "./helpers.ts";

const CODE = 0x10000n;
const HANDLER = 0x14000n;
const DATA = 0x30000n;
const IF = 0x200n;

function engine(state: ArchState): ImplEngine {
  const e = new ImplEngine();
  e.load(state, "intel");
  return e;
}

/** Kernel code at 0x10000 with IF = 1, and a timer handler for `vector` at 0x14000:
 *  inc r15; (out EOI unless `noEoi`); iretq. */
function timerKernel(build: (p: Program) => void, opts: { vector?: number; noEoi?: boolean; regs?: Record<number, bigint>; setup?: (m: Memory) => void } = {}): ArchState {
  const vector = opts.vector ?? 0x20;
  const p = new Program(CODE);
  build(p);
  const h = new Program(HANDLER);
  h.emit(Code.Inc_rm64, R.R15);
  if (opts.noEoi !== true) h.emit(Code.Out_imm8_AL, 0xec, R.AL);
  h.emit(Code.Iretq);
  const state = kernel(p.encode(), (m) => {
    m.write(HANDLER, h.encode());
    const [lo, hi] = gate(HANDLER);
    m.write64(0x9000n + 16n * BigInt(vector), lo);
    m.write64(0x9008n + 16n * BigInt(vector), hi);
    opts.setup?.(m);
  }, opts.regs ?? {});
  return { ...state, rflags: state.rflags | IF };
}

/** `mov eax, value; out port, eax` (4 bytes). */
function out32(p: Program, port: number, value: number): void {
  p.emit(Code.Mov_r32_imm32, R.EAX, value).emit(Code.Out_imm8_EAX, port, R.EAX);
}

const kinds = (events: EngineEvent[]) => events.map((e) => (e.kind === "delivered" ? `delivered ${e.vector} ${e.source}` : e.kind));

describe("the console and the exit port", () => {
  it("an OUT to 0xE9 appends its low byte (any width); 0xE8 and other ports append nothing", () => {
    const p = new Program(CODE);
    p.emit(Code.Mov_r32_imm32, R.EAX, 0x4241_6968).emit(Code.Out_imm8_AL, 0xe9, R.AL).emit(Code.Out_imm8_EAX, 0xe9, R.EAX);
    p.emit(Code.Out_imm8_EAX, 0xe8, R.EAX).emit(Code.Mov_r32_imm32, R.EDX, 0xe9).emit(Code.Out_DX_AX, R.DX, R.AX).emit(Code.Hlt);
    const e = engine(kernel(p.encode()));
    expect(e.run(100)).toEqual({ reason: "hlt", steps: 7 });
    expect(new TextDecoder().decode(e.takeConsole())).toBe("hhh");
    expect(e.takeConsole()).toEqual(new Uint8Array(0));
  });

  it("IN from 0xE9 reads 0xE9; from PERIOD and VECTOR their values; from 0xEC, 0xF4 and other ports all ones", () => {
    const p = new Program(CODE);
    out32(p, 0xe0, 0x12345);
    p.emit(Code.In_AL_imm8, R.AL, 0xe9).emit(Code.Mov_rm64_r64, R.RBX, R.RAX);
    p.emit(Code.In_EAX_imm8, R.EAX, 0xe0).emit(Code.Mov_rm64_r64, R.RCX, R.RAX);
    p.emit(Code.In_AX_imm8, R.AX, 0xe0).emit(Code.Mov_rm64_r64, R.RSI, R.RAX);
    p.emit(Code.In_EAX_imm8, R.EAX, 0xe4).emit(Code.Mov_rm64_r64, R.RDI, R.RAX);
    p.emit(Code.In_EAX_imm8, R.EAX, 0xec).emit(Code.Mov_rm64_r64, R.R8, R.RAX);
    p.emit(Code.In_AL_imm8, R.AL, 0xf4).emit(Code.Hlt);
    const out = runAll({ ...kernel(p.encode()), rflags: 2n }, 100);
    const g = out.state.gpr;
    expect(g[RBX]! & 0xffn).toBe(0xe9n);
    expect(g[RCX]).toBe(0x12345n);
    expect(g[6]! & 0xffffn).toBe(0x2345n);
    expect(g[RDI]).toBe(0x20n);
    expect(g[8]).toBe(0xffff_ffffn);
    expect(g[RAX]! & 0xffn).toBe(0xffn);
  });

  it("an OUT to 0xF4 is the last step: then step() says `exited`, run() stops with `exit` and the value; the state carries it", () => {
    const p = new Program(CODE);
    out32(p, 0xf4, 0xbeef);
    p.emit(Code.Inc_rm64, R.RBX).emit(Code.Hlt);
    const e = engine(kernel(p.encode()));
    expect(e.run(100)).toEqual({ reason: "exit", steps: 2, exitValue: 0xbeef });
    expect(e.step()).toEqual({ kind: "exited", rip: CODE + 7n, value: 0xbeef });
    expect(e.run(0)).toEqual({ reason: "exit", steps: 0, exitValue: 0xbeef });
    const s = e.state();
    expect(s.devices.exitValue).toBe(0xbeef);
    expect(s.gpr[RBX]).toBe(0n);
    const again = engine(s);
    expect(again.step().kind).toBe("exited");
    // A 1-byte OUT zero-extends.
    const q = new Program(CODE);
    q.emit(Code.Mov_r32_imm32, R.EAX, 0x1ff).emit(Code.Out_imm8_AL, 0xf4, R.AL);
    expect(engine(kernel(q.encode())).run(10)).toEqual({ reason: "exit", steps: 2, exitValue: 0xff });
  });

  it("a faulting OUT (CPL 3 with IOPL 0 and no I/O bitmap) reaches no device", () => {
    const mem = baseMemory();
    mem.write(0x200000n, [0xe6, 0xe9, 0xf4]); // out 0xe9, al
    const e = engine(layoutState(mem, { user: true }));
    expect(e.step()).toMatchObject({ kind: "delivered", vector: 13 });
    expect(e.takeConsole().length).toBe(0);
  });
});

describe("the timer", () => {
  it("the tick is pending after the period-th completed instruction after the PERIOD write", () => {
    const e = engine(timerKernel((p) => {
      out32(p, 0xe0, 3);
      for (let k = 0; k < 6; k++) p.emit(Code.Inc_rm64, R.RBX);
      p.emit(Code.Hlt);
    }));
    const events: EngineEvent[] = [];
    for (let k = 0; k < 9; k++) events.push(e.step());
    // mov eax; out; inc ×3 → tick; delivered; handler: inc r15, out EOI, iretq; inc
    expect(kinds(events)).toEqual(["retired", "io", "retired", "retired", "retired", "delivered 32 external", "retired", "io", "retired"]);
    const s = e.state();
    expect(s.gpr[RBX]).toBe(3n);
    // the EOI reloaded 3; the IRETQ counted one
    expect(s.devices.timer).toEqual({ period: 3, vector: 0x20, countdown: 2, waitingEoi: false });
  });

  it("the writing instruction counts under the old settings; EOI reloads; no EOI means no further tick", () => {
    const e = engine(timerKernel((p) => {
      out32(p, 0xe0, 1);
      for (let k = 0; k < 4; k++) p.emit(Code.Inc_rm64, R.RBX);
      p.emit(Code.Hlt);
    }, { noEoi: true }));
    const s0 = e.run(3); // mov, out, inc → tick pending after the inc
    expect(s0.steps).toBe(3);
    expect(e.state().cpu.pendingIrq).toBe(0x20);
    expect(e.state().devices.timer).toEqual({ period: 1, vector: 0x20, countdown: 0, waitingEoi: true });
    e.run(1000);
    const s = e.state();
    expect(s.gpr[15]).toBe(1n); // one tick only: the handler never sent EOI
    expect(s.gpr[RBX]).toBe(4n);
  });

  it("a compiled hot loop is interrupted at exactly the same instruction on every configuration and with step()", () => {
    const state = timerKernel((p) => {
      out32(p, 0xe0, 97);
      p.label("loop").emit(Code.Add_rm64_imm8, R.RBX, 1).emit(Code.Xor_rm64_r64, R.RCX, R.RBX).emit(Code.Dec_rm64, R.RSI).emit(Code.Jne_rel8_64, "loop");
      p.emit(Code.Hlt);
    }, { regs: { 6: 1000n } });
    const out = runAll(state, 3000);
    const stepped = stepOn(state, 3000);
    expect(stepped.text).toBe(out.text);
    // 3000 steps: the 2 setup instructions, then rounds of 97 loop instructions + 4 handler steps
    // (delivery, inc, out, iretq) — 3 handler instructions count toward the next period.
    expect(out.state.gpr[15]).toBeGreaterThan(25n);
    for (const steps of [150, 151, 152, 153, 2999]) {
      const a = runAll(state, steps);
      expect(stepOn(state, steps).text).toBe(a.text);
    }
  });

  it("an OUT to EOI at the instruction that ticks: first the tick, then the EOI (waiting cleared, countdown reloaded)", () => {
    const e = engine(timerKernel((p) => {
      p.emit(Code.Cli);
      out32(p, 0xe0, 2);
      p.emit(Code.Inc_rm64, R.RBX).emit(Code.Out_imm8_AL, 0xec, R.AL).emit(Code.Hlt);
    }));
    e.run(5);
    const s = e.state();
    expect(s.cpu.pendingIrq).toBe(0x20);
    expect(s.devices.timer).toEqual({ period: 2, vector: 0x20, countdown: 2, waitingEoi: false });
  });

  it("a halted CPU jumps to the tick when it could be taken (sti; hlt), and is idle when not (cli; hlt, or CR8)", () => {
    const wake = engine(timerKernel((p) => {
      out32(p, 0xe0, 1000);
      p.emit(Code.Hlt).emit(Code.Inc_rm64, R.RBX).emit(Code.Cli).emit(Code.Hlt);
    }));
    expect(wake.run(100)).toEqual({ reason: "hlt", steps: 10 }); // mov out hlt, delivered, inc out iretq, inc cli hlt
    expect(wake.state().gpr[15]).toBe(1n);
    expect(wake.state().gpr[RBX]).toBe(1n);
    const idle = engine(timerKernel((p) => {
      out32(p, 0xe0, 1000);
      p.emit(Code.Cli).emit(Code.Hlt);
    }));
    expect(idle.run(100)).toEqual({ reason: "hlt", steps: 4 });
    expect(idle.step().kind).toBe("halted");
    expect(idle.state().devices.timer.countdown).toBe(998);
    const masked = engine({ ...timerKernel((p) => {
      out32(p, 0xe0, 1000);
      p.emit(Code.Hlt);
    }), cr8: 2n });
    expect(masked.run(100)).toEqual({ reason: "hlt", steps: 3 });
    // run(0) on a halted CPU whose tick could wake it is not idle, and changes nothing.
    const pending = engine(timerKernel((p) => {
      out32(p, 0xe0, 1000);
      p.emit(Code.Hlt);
    }));
    pending.run(3);
    const before = JSON.stringify(pending.state().devices);
    expect(pending.run(0)).toEqual({ reason: "limit", steps: 0 });
    expect(JSON.stringify(pending.state().devices)).toBe(before);
    expect(pending.step()).toMatchObject({ kind: "delivered", vector: 0x20, source: "external" });
  });

  it("ticks between REP iterations: the string resumes after the handler and completes", () => {
    const state = timerKernel((p) => {
      out32(p, 0xe0, 7);
      p.emit(Code.Mov_r32_imm32, R.ECX, 100).emit(Code.Mov_r64_imm64, R.RDI, DATA).emit(Code.Mov_r32_imm32, R.EAX, 0x77);
      p.bytes([0xf3, 0xaa]); // rep stosb
      p.emit(Code.Cli).emit(Code.Hlt);
    });
    const out = runAll(state, 1000);
    expect(stepOn(state, 1000).text).toBe(out.text);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RCX]).toBe(0n);
    expect(out.state.gpr[RDI]).toBe(DATA + 100n);
    // 5 steps to the string (mov out mov mov mov: the tick counts from after the OUT: 3 more),
    // then 100 iterations; every round of 7 counted instructions has one tick, the handler's three
    // instructions count too.
    expect(out.state.gpr[15]).toBeGreaterThan(10n);
    for (const steps of [20, 21, 22, 23, 24, 25]) expect(stepOn(state, steps).text).toBe(runAll(state, steps).text);
  });

  it("INT n does not count; a reprogrammed VECTOR is used by the next tick", () => {
    const state = timerKernel((p) => {
      out32(p, 0xe4, 0x30);
      out32(p, 0xe0, 4);
      p.emit(Code.Int_imm8, 0x40); // its handler is IRETQ
      for (let k = 0; k < 4; k++) p.emit(Code.Inc_rm64, R.RBX);
      p.emit(Code.Cli).emit(Code.Hlt);
    }, { vector: 0x30, setup: (m) => {
      m.write(0x15000n, [0x48, 0xcf]);
      const [lo, hi] = gate(0x15000n);
      m.write64(0x9400n, lo);
      m.write64(0x9408n, hi);
    } });
    const e = engine(state);
    const events: EngineEvent[] = [];
    for (let k = 0; k < 10; k++) events.push(e.step());
    // IRETQ and three INCs are the four counted instructions after the PERIOD write
    expect(kinds(events)).toEqual(["retired", "io", "retired", "io", "delivered 64 software", "retired", "retired", "retired", "retired", "delivered 48 external"]);
    expect(runAll(state, 100).text).toBe(stepOn(state, 100).text);
  });
});
