import { expect } from "vitest";
// Shared helpers for the impl/ tests: machines on the shared layout, running a program on
// several engine configurations, and comparing whole architectural states.
import type { ArchState } from "../../contract/state.ts";
import { stateToJson } from "../../contract/state.ts";
import { compareStates, type FieldDifference } from "../../contract/compare.ts";
import { isDeepStrictEqual } from "node:util";
import { ImplEngine, type ImplEngineOptions } from "../../impl/engine.ts";
import type { EngineStop } from "../../contract/engine.ts";
import {
  Code, DEFAULT_LAYOUT, GuestMemory, Instruction as I, Program, Reg, gate, layoutMemory, layoutState as guestState,
} from "../../guest/index.ts";

export type Memory = GuestMemory;

/** Memory holding the guest kit's shared layout (guest/layout.ts). */
export function baseMemory(): Memory {
  return layoutMemory(DEFAULT_LAYOUT);
}

/** The state for a memory image from baseMemory(): CPL 0 at 0x10000 (RSP 0x20000) or, with
 *  `user`, CPL 3 at 0x200000 (RSP 0x210000, IF = 1). */
export function layoutState(mem: Memory, opts: { readonly user?: boolean } = {}): ArchState {
  return guestState(DEFAULT_LAYOUT, mem, { ring: opts.user === true ? 3 : 0 });
}

/** The engine configurations every cache test compares: the reference (no caches at all),
 *  interpretation with caches, and compiled blocks. */
export const CONFIGS: { readonly name: string; readonly opts: ImplEngineOptions }[] = [
  { name: "uncached", opts: { uncached: true } },
  { name: "interpreted", opts: { compile: false } },
  { name: "compiled", opts: {} },
];

/** A canonical JSON text of a state (memory as non-zero regions), for equality checks. */
export function stateText(s: ArchState): string {
  return JSON.stringify(stateToJson(s));
}

export interface Outcome {
  readonly stop: EngineStop;
  readonly state: ArchState;
  /** stateText(state), made when first read (most callers read only the stop and the state). */
  readonly text: string;
}

/** An Outcome whose text is made when first read. */
export function outcome(stop: EngineStop, state: ArchState): Outcome {
  let text: string | undefined;
  return {
    stop,
    state,
    get text() {
      return (text ??= stateText(state));
    },
  };
}

export function runOn(state: ArchState, steps: number, opts: ImplEngineOptions, profile: "intel" | "amd" = "intel"): Outcome {
  const e = new ImplEngine(opts);
  e.load(state, profile);
  const stop = e.run(steps);
  return outcome(stop, e.state());
}

/** Runs with step() until `steps` steps or a stop (the run() stop rules); returns the state. */
export function stepOn(state: ArchState, steps: number, opts: ImplEngineOptions = {}, profile: "intel" | "amd" = "intel"): Outcome {
  const e = new ImplEngine(opts);
  e.load(state, profile);
  let n = 0;
  let reason: EngineStop["reason"] = "limit";
  for (;;) {
    const m = e.machine;
    if (m.shutdown) {
      reason = "shutdown";
      break;
    }
    if (n >= steps) {
      // run() checks hlt before the limit.
      if (m.halted && e.step().kind === "halted" && e.machine.halted) reason = "hlt";
      break;
    }
    const wasHalted = m.halted;
    const ev = e.step();
    if (ev.kind === "unsupported" || ev.kind === "memory-limit") {
      reason = ev.kind;
      break;
    }
    if (ev.kind === "halted" && wasHalted && e.machine.halted) {
      reason = "hlt";
      break;
    }
    n++;
  }
  return outcome({ reason, steps: n }, e.state());
}

/** 64-bit little-endian bytes. */
export function u64(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((v >> (8n * i)) & 0xffn));
  return out;
}

/** A kernel-mode state (CPL 0 at 0x10000): `code` there, `setup` applied to memory, then the
 *  registers in `regs` and the fields in `patch` replaced. */
export function kernel(code: readonly number[] | Uint8Array, setup?: (mem: Memory) => void,
  regs: Record<number, bigint> = {}, patch: Partial<ArchState> = {}): ArchState {
  const mem = baseMemory();
  mem.write(0x10000n, code);
  setup?.(mem);
  const s = layoutState(mem);
  const gpr = [...s.gpr];
  for (const [k, v] of Object.entries(regs)) gpr[Number(k)] = v;
  return { ...s, ...patch, gpr };
}

/** Code assembled at `rip` by `build` (guest kit). */
export function asm(rip: bigint, build: (p: Program) => void): Uint8Array {
  const p = new Program(rip);
  build(p);
  return p.encode();
}

export const HLT = (p: Program): void => {
  p.add(I.create(Code.Hlt));
};

type Insn = ReturnType<typeof I.create>;

/** Kernel handler at `rip`: `pre`; inc rbx; cmp rbx, at; jne skip; `edit`; skip: `post`; iretq —
 *  it edits a table once, at its `at`-th run, so that a hot loop has filled the caches first. */
export function handler(m: Memory, rip: bigint, at: number, edit: Insn[], pre: Insn[] = [], post: Insn[] = []): void {
  const p = new Program(rip);
  for (const x of pre) p.add(x);
  p.add(I.createReg(Code.Inc_rm64, Reg.RBX));
  p.add(I.createRegI32(Code.Cmp_rm64_imm8, Reg.RBX, at));
  const jne = p.add(I.createBranch(Code.Jne_rel8_64, 0n));
  for (const x of edit) p.add(x);
  jne.nearBranch64 = p.here(); // skip
  for (const x of post) p.add(x);
  p.add(I.create(Code.Iretq));
  m.write(rip, p.encode());
}

/** User loop at 0x200000: int 0x40; inc r12; jmp loop (gate 0x40: DPL 3, handler 0x13200). */
export function intLoop(m: Memory): void {
  const [lo, hi] = gate(0x13200n, { dpl: 3 });
  m.write64(0x9400n, lo);
  m.write64(0x9408n, hi);
  const u = new Program(0x200000n);
  const loop = u.here();
  u.add(I.createU32(Code.Int_imm8, 0x40));
  u.add(I.createReg(Code.Inc_rm64, Reg.R12));
  u.add(I.createBranch(Code.Jmp_rel8_64, loop));
  m.write(0x200000n, u.encode());
}

/** A byte of the shared layout's GDT (page 8). */
export function gdtByte(offset: number): number {
  return baseMemory().page(8)[offset]!;
}

export const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;

/** Runs on every configuration, checks they agree, returns the outcome. */
export function runAll(state: ArchState, steps: number, profile: "intel" | "amd" = "intel"): Outcome {
  const outs = CONFIGS.map((c) => runOn(state, steps, c.opts, profile));
  outs.slice(1).forEach((o, i) => {
    if (!isDeepStrictEqual(o.stop, outs[0]!.stop)) expect(o.stop).toEqual(outs[0]!.stop);
    expectSameState(outs[0]!.state, o.state, `${CONFIGS[i + 1]!.name} against ${CONFIGS[0]!.name}: `);
  });
  return outs[0]!;
}

/** Fails unless `b` is the state `a` is: what equal stateText texts say (every field, hidden parts
 *  included; memory with absent pages as zero), through the one comparison (contract/compare.ts,
 *  the exact rule over all memory) instead of two JSON texts with every page in hex. */
export function expectSameState(a: ArchState, b: ArchState, label = ""): void {
  const d = stateDifferences(a, b);
  if (d.length > 0) expect(d.map((x) => `${label}${x.field}: ${String(x.a)} / ${String(x.b)}`)).toEqual([]);
}

/** Where `b` differs from `a` (what unequal stateText texts say), by the one comparison. */
export function stateDifferences(a: ArchState, b: ArchState): readonly FieldDifference[] {
  return compareStates(a, b, { rule: "exact", memory: "all" }).differences;
}

/** The little-endian qword at a physical address of a state (absent pages read as zero). */
export function read64(s: ArchState, address: bigint): bigint {
  let v = 0n;
  for (let i = 7n; i >= 0n; i--) {
    const a = address + i;
    const page = s.memory.get(Number(a >> 12n));
    v = (v << 8n) | BigInt(page === undefined ? 0 : page[Number(a & 0xfffn)]!);
  }
  return v;
}
