// String instructions in impl/ (impl/strings.ts): one iteration per step (docs/model-choices.md, "REP
// string instructions: step granularity"), the element semantics of MOVS/STOS/LODS/CMPS/SCAS, a
// fault in the middle, and the caches kept invisible when a string rewrites code or page tables.
// runAll runs every configuration (uncached, interpreted, compiled — the compiled one batches
// iterations) and checks they agree; stepOn checks step() against run().
import { describe, expect, it } from "vitest";
import { Code, Program, Register as R } from "../../guest/index.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { RAX, RCX, RDI, RSI, RSP, expectSameState, kernel, read64, runAll, runOn, stepOn, u64, type Memory } from "./helpers.ts";

const CODE = 0x10000n;
const DATA = 0x30000n;
const RF = 1n << 16n;
// String instructions as bytes (the assembler's forms want explicit operands).
const REP_MOVSQ = [0xf3, 0x48, 0xa5], REP_MOVSB = [0xf3, 0xa4], REPE_CMPSB = [0xf3, 0xa6], REPNE_SCASB = [0xf2, 0xae];
const LODSB = [0xac], LODSD = [0xad], REP_STOSB = [0xf3, 0xaa];

function code(build: (p: Program) => void): Uint8Array {
  const p = new Program(CODE);
  build(p);
  p.emit(Code.Hlt);
  return p.encode();
}

function bytesAt(s: { memory: ReadonlyMap<number, Uint8Array> }, address: bigint, n: number): number[] {
  const out: number[] = [];
  for (let k = 0n; k < BigInt(n); k++) {
    const a = address + k;
    out.push(s.memory.get(Number(a >> 12n))?.[Number(a & 0xfffn)] ?? 0);
  }
  return out;
}

/** Runs on every configuration and with step(); all must agree. */
function check(state: ReturnType<typeof kernel>, steps = 400) {
  const out = runAll(state, steps);
  const stepped = stepOn(state, steps);
  expectSameState(out.state, stepped.state, "step() against run(): ");
  expect(stepped.stop.steps).toBe(out.stop.steps);
  return out;
}

describe("REP string instructions: one iteration per step", () => {
  it("REP STOSB: each step is one iteration, RIP stays at the instruction with RF = 1 until the last", () => {
    const e = new ImplEngine();
    e.load(kernel([0xf3, 0xaa, 0xf4], undefined, { [RAX]: 0x5an, [RCX]: 3n, [RDI]: DATA }), "intel");
    for (let k = 0; k < 2; k++) {
      expect(e.step().kind).toBe("retired");
      const s = e.state();
      expect(s.rip).toBe(CODE);
      expect(s.rflags & RF).toBe(RF);
      expect(s.gpr[RCX]).toBe(BigInt(2 - k));
    }
    expect(e.step().kind).toBe("retired");
    const s = e.state();
    expect(s.rip).toBe(CODE + 2n);
    expect(s.rflags & RF).toBe(0n);
    expect(s.gpr[RDI]).toBe(DATA + 3n);
    expect(bytesAt(s, DATA, 4)).toEqual([0x5a, 0x5a, 0x5a, 0]);
  });

  it("run(n) stops between iterations: n steps are n iterations", () => {
    const state = kernel([0xf3, 0x48, 0xab, 0xf4], undefined, { [RAX]: 0x1122_3344_5566_7788n, [RCX]: 100n, [RDI]: DATA });
    for (const opts of [{}, { compile: false }, { uncached: true }]) {
      const out = runOn(state, 37, opts);
      expect(out.stop).toEqual({ reason: "limit", steps: 37 });
      expect(out.state.rip).toBe(CODE);
      expect(out.state.gpr[RCX]).toBe(63n);
      expect(out.state.gpr[RDI]).toBe(DATA + 37n * 8n);
      expect(read64(out.state, DATA + 36n * 8n)).toBe(0x1122_3344_5566_7788n);
      expect(read64(out.state, DATA + 37n * 8n)).toBe(0n);
    }
  });

  it("a count of 0 is one step with no access (an unmapped RDI does not fault)", () => {
    const out = check(kernel([0xf3, 0xaa, 0xf4], undefined, { [RCX]: 0n, [RDI]: 0x600000n }), 10);
    expect(out.stop).toEqual({ reason: "hlt", steps: 2 });
    expect(out.state.gpr[RDI]).toBe(0x600000n);
  });

  it("REP MOVSQ backwards (DF = 1), then CLD and REP MOVSB forwards", () => {
    const out = check(kernel(code((p) => {
      p.emit(Code.Std).bytes(REP_MOVSQ);
      p.emit(Code.Cld).emit(Code.Mov_r32_imm32, R.ECX, 5).emit(Code.Mov_r64_imm64, R.RSI, DATA).emit(Code.Mov_r64_imm64, R.RDI, DATA + 0x200n);
      p.bytes(REP_MOVSB);
    }), (m) => m.write(DATA, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]), { [RCX]: 2n, [RSI]: DATA + 8n, [RDI]: DATA + 0x108n }));
    expect(bytesAt(out.state, DATA + 0x100n, 16)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(bytesAt(out.state, DATA + 0x200n, 6)).toEqual([1, 2, 3, 4, 5, 0]);
    expect(out.state.gpr[RSI]).toBe(DATA + 5n);
    expect(out.state.gpr[RDI]).toBe(DATA + 0x205n);
    expect(out.state.rflags & (1n << 10n)).toBe(0n);
  });

  it("REPE CMPSB stops at the first difference; REPNE SCASB at the first match (flags of the last compare)", () => {
    const out = check(kernel(code((p) => {
      p.bytes(REPE_CMPSB);
      p.emit(Code.Mov_rm64_r64, R.R8, R.RCX).emit(Code.Mov_rm64_r64, R.R9, R.RSI);
      p.emit(Code.Mov_r32_imm32, R.ECX, 100).emit(Code.Mov_r64_imm64, R.RDI, DATA).emit(Code.Mov_r32_imm32, R.EAX, 7);
      p.bytes(REPNE_SCASB);
    }), (m) => { m.write(DATA, [1, 2, 3, 4, 5, 6, 7, 8]); m.write(DATA + 0x100n, [1, 2, 3, 9, 5]); }, { [RCX]: 10n, [RSI]: DATA, [RDI]: DATA + 0x100n }));
    const g = out.state.gpr;
    expect(g[8]).toBe(6n); // 4 iterations: RCX 10 → 6
    expect(g[9]).toBe(DATA + 4n);
    expect(g[RCX]).toBe(93n); // found at the 7th byte
    expect(g[RDI]).toBe(DATA + 7n);
    expect(out.state.rflags & 0x40n).toBe(0x40n);
  });

  it("LODS: LODSB merges into AL, LODSD zero-extends; STOSW stores AX; F2 on STOS repeats like F3", () => {
    const out = check(kernel(code((p) => {
      p.bytes(LODSB).emit(Code.Mov_rm64_r64, R.RBX, R.RAX);
      p.bytes(LODSD);
      p.emit(Code.Mov_r32_imm32, R.ECX, 3).emit(Code.Mov_r64_imm64, R.RDI, DATA + 0x40n);
      p.bytes([0xf2, 0x66, 0xab]); // repne stosw
    }), (m) => m.write(DATA, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66]), { [RAX]: 0xffff_ffff_ffff_ff00n, [RSI]: DATA }));
    expect(out.state.gpr[3]).toBe(0xffff_ffff_ffff_ff11n);
    expect(out.state.gpr[RAX]).toBe(0x5544_3322n);
    expect(bytesAt(out.state, DATA + 0x40n, 8)).toEqual([0x22, 0x33, 0x22, 0x33, 0x22, 0x33, 0, 0]);
  });

  it("with 67 the count and index registers are ECX, ESI, EDI (written zero-extended)", () => {
    const out = check(kernel([0x67, 0xf3, 0xa4, 0xf4], (m) => m.write(DATA, [7, 8]), { [RCX]: 0xffff_0000_0000_0002n, [RSI]: 0xabcd_0000_0000_0000n | DATA, [RDI]: 0x1234_0000_0000_0000n | (DATA + 0x10n) }));
    expect(out.state.gpr[RCX]).toBe(0n);
    expect(out.state.gpr[RSI]).toBe(DATA + 2n);
    expect(out.state.gpr[RDI]).toBe(DATA + 0x12n);
    expect(bytesAt(out.state, DATA + 0x10n, 2)).toEqual([7, 8]);
  });

  it("an FS override moves the source; the destination is always ES", () => {
    const state = kernel([0x64, 0xa4, 0xf4], (m) => m.write(DATA + 0x1000n, [0x42]), { [RSI]: 0n, [RDI]: DATA });
    const out = check({ ...state, fs: { ...state.fs, base: DATA + 0x1000n }, es: { ...state.es, base: 0x5000n } }, 10);
    expect(bytesAt(out.state, DATA, 1)).toEqual([0x42]);
  });
});

describe("a fault in the middle of a REP string instruction", () => {
  it("keeps the completed iterations, delivers with RIP = the instruction and RF = 1 pushed, RCX as after the last one", () => {
    // rep stosb over the end of the mapped 4–6 MiB window: the third byte is at 0x600000 (not present).
    const out = check(kernel([0xf3, 0xaa, 0xf4], undefined, { [RAX]: 0xeen, [RCX]: 5n, [RDI]: 0x5ffffen }), 20);
    expect(out.state.rip).toBe(0xb0e1n); // #PF stub, halted
    expect(out.state.gpr[RCX]).toBe(3n);
    expect(out.state.gpr[RDI]).toBe(0x600000n);
    expect(out.state.cr2).toBe(0x600000n);
    expect(bytesAt(out.state, 0x5ffffen, 2)).toEqual([0xee, 0xee]);
    const rsp = out.state.gpr[RSP]!;
    expect(read64(out.state, rsp + 8n)).toBe(CODE); // saved RIP
    expect(read64(out.state, rsp + 24n) & RF).toBe(RF); // saved RFLAGS
    expect(out.stop.steps).toBe(4); // two iterations, the delivery, HLT
  });

  it("MOVS whose write faults keeps nothing of that iteration (RSI not advanced)", () => {
    const out = check(kernel([0xf3, 0xa4, 0xf4], (m) => m.write(DATA, [1, 2, 3]), { [RCX]: 3n, [RSI]: DATA, [RDI]: 0x5fffffn }), 20);
    expect(out.state.gpr[RCX]).toBe(2n);
    expect(out.state.gpr[RSI]).toBe(DATA + 1n);
    expect(out.state.gpr[RDI]).toBe(0x600000n);
  });
});

describe("string instructions keep every cache invisible", () => {
  it("REP STOSB over a hot compiled loop: the loop runs the new bytes", () => {
    // loop: add rbx, 1 (48 83 c3 01); dec rcx; jnz loop — run 50 times (compiled), then rep stosb
    // rewrites the immediate to 0x10 and the loop runs 3 more times.
    const p = new Program(CODE);
    p.emit(Code.Mov_r32_imm32, R.ECX, 50);
    p.label("loop").emit(Code.Add_rm64_imm8, R.RBX, 1).emit(Code.Dec_rm64, R.RCX).emit(Code.Jne_rel8_64, "loop");
    p.emit(Code.Cmp_rm64_imm8, R.RBP, 0).emit(Code.Jne_rel8_64, "done");
    p.emit(Code.Mov_r32_imm32, R.EBP, 1);
    p.emit(Code.Mov_r32_imm32, R.EAX, 0x10).emit(Code.Mov_r32_imm32, R.ECX, 1);
    p.emit(Code.Mov_r64_imm64, R.RDI, CODE + 5n + 3n); // the immediate of `add rbx, 1`
    p.bytes(REP_STOSB);
    p.emit(Code.Mov_r32_imm32, R.ECX, 3).emit(Code.Jmp_rel32_64, "loop");
    p.label("done").emit(Code.Hlt);
    const out = check(kernel(p.encode()), 1000);
    expect(out.state.gpr[3]).toBe(50n + 3n * 0x10n);
  });

  it("REP STOSB overwriting its own bytes: the next iteration is fetched and decoded anew", () => {
    // at X: f3 aa; RDI = X, AL = 0x90. Iteration 1 turns the F3 into a NOP; then `90` (NOP) and `aa`
    // (one STOSB, which overwrites itself) run; RCX stays 4.
    const out = check(kernel([0xf3, 0xaa, 0xf4], undefined, { [RAX]: 0x90n, [RCX]: 5n, [RDI]: CODE }), 20);
    expect(bytesAt(out.state, CODE, 3)).toEqual([0x90, 0x90, 0xf4]);
    expect(out.state.gpr[RCX]).toBe(4n);
    expect(out.state.gpr[RDI]).toBe(CODE + 2n);
    expect(out.stop).toEqual({ reason: "hlt", steps: 4 });
  });

  it("REP MOVSQ whose first iteration maps the page its second iteration reads", () => {
    // 0x600000 → frame 0x40000 (PTE at 0x4000). The source is 0x600ff8 (a PTE value mapping frame
    // 0x41000), copied to the PTE of 0x601000 (0x4008); the next element is read from 0x601000.
    const setup = (m: Memory) => {
      m.write(0x4000n, u64(0x40000n | 3n));
      m.write(0x40ff8n, u64(0x41000n | 3n));
      m.write(0x41000n, u64(0x42000n | 3n));
    };
    const out = check(kernel([0xf3, 0x48, 0xa5, 0xf4], setup, { [RCX]: 2n, [RSI]: 0x600ff8n, [RDI]: 0x4008n }), 10);
    expect(out.stop).toEqual({ reason: "hlt", steps: 3 });
    expect(read64(out.state, 0x4008n) & ~0x60n).toBe(0x41000n | 3n); // A/D bits aside
    expect(read64(out.state, 0x4010n) & ~0x60n).toBe(0x42000n | 3n);
    expect(out.state.gpr[RSI]).toBe(0x601008n);
  });

  it("batched REP MOVS / STOS (whole runs in a page) equal one-by-one iterations: overlaps, both directions, page ends", () => {
    // The data pages are written first (so the TLB grants writes), then each string runs across a
    // page end, overlapping its source by less than, exactly and more than one element.
    const cases: { op: number[]; size: number; dist: number; df: boolean }[] = [];
    for (const [op, size] of [[[0xa4], 1], [[0x66, 0xa5], 2], [[0xa5], 4], [[0x48, 0xa5], 8], [[0xaa], 1], [[0x48, 0xab], 8]] as const)
      for (const dist of [1, 3, 8, 64, -5]) for (const df of [false, true]) cases.push({ op: [...op], size, dist, df });
    for (const c of cases) {
      const src = DATA + 0xf00n, dst = src + BigInt(c.dist);
      const warm = [0x48, 0xc7, 0x07, 0, 0, 0, 0, 0x48, 0xc7, 0x47, 0x40, 0, 0, 0, 0]; // mov qword [rdi], 0; [rdi+0x40]
      const state = kernel([...warm, ...(c.df ? [0xfd] : [0xfc]), 0xf3, ...c.op, 0xf4],
        (m) => m.write(DATA + 0xe00n, Array.from({ length: 0x400 }, (_, k) => (k * 13 + 1) & 0xff)),
        { [RCX]: BigInt(Math.floor(0x180 / c.size)), [RSI]: src, [RDI]: dst, [RAX]: 0x1122_3344_5566_7788n });
      check(state, 2000);
    }
  });

  it("random REP string programs agree on every configuration and with step()", () => {
    // A little generator: strings of every kind and size over a data page, with random counts,
    // directions and prefixes, between ALU instructions that set flags.
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let round = 0; round < 40; round++) {
      const bytes: number[] = [];
      for (let k = 0; k < 12; k++) {
        const kind = rnd(6);
        if (kind === 0) bytes.push(0x48, 0xc7, 0xc1, rnd(40), 0, 0, 0); // mov rcx, n
        else if (kind === 1) bytes.push(rnd(2) === 0 ? 0xfc : 0xfd); // cld / std
        else if (kind === 2) bytes.push(0x48, 0x83, 0xc6, rnd(64)); // add rsi, imm8
        else {
          const prefix = [[], [0xf3], [0xf2]][rnd(3)]!;
          const size = [[], [0x66], [0x48]][rnd(3)]!;
          const op = [0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf][rnd(10)]!;
          bytes.push(...prefix, ...size, op);
        }
      }
      bytes.push(0xf4);
      const state = kernel(bytes, (m) => m.write(DATA + 0x400n, Array.from({ length: 512 }, (_, i) => (i * 7) & 0xff)),
        { [RSI]: DATA + 0x500n, [RDI]: DATA + 0x600n, [RCX]: 9n, [RAX]: 0x1234_5678_9abc_def0n });
      check(state, 2000);
    }
  });
});
