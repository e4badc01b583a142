// Deliberately broken engines: an in-process engine (impl/ by default) with one classic emulator
// bug planted on top. They show what a campaign reports for a real bug, and the tests use them to
// check that each is found, shrunk and grouped under its rule (`ringspec serve --engine impl
// --plant NAME` serves one over the process protocol).
//
// A planted bug is a rewrite of a correct step's result: after each step the wrapper looks at the
// state before, the event and the state after, and where the bug applies it reloads the inner
// engine with what the buggy CPU would have produced. What the inner engine wrote stays reported
// by `touched()`.
import type { Engine, EngineEvent, EngineStop, PhysicalRange, RaiseRequest } from "../contract/engine.ts";
import type { ProfileName } from "../contract/profile.ts";
import { PAGE_SIZE, type ArchState } from "../contract/state.ts";
import { unionRanges } from "../contract/compare.ts";
// The guest kit's paging and descriptor modules only (not its assembler): `ringspec serve
// --plant` starts quickly.
import { translate } from "../guest/paging.ts";
import { TSS_OFFSETS, decodeGate } from "../guest/descriptors.ts";

export interface PlantedBug {
  readonly name: string;
  /** What the broken engine does wrong, one line. */
  readonly description: string;
  /** The rule a report should group it under. */
  readonly rule: string;
  /** The families that reach it (for the tests and the README's example). */
  readonly families: readonly string[];
  /** The buggy result of one step, or null where the bug changes nothing. */
  readonly rewrite: (before: ArchState, event: EngineEvent, after: ArchState) => { state: ArchState; event: EngineEvent } | null;
}

// ------------------------------------------------------------------------------------------------
// Reading and writing guest memory through the page tables

function readPhys(s: ArchState, address: bigint, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) {
    const a = address + BigInt(i);
    v = (v << 8n) | BigInt(s.memory.get(Number(a >> 12n))?.[Number(a & 0xfffn)] ?? 0);
  }
  return v;
}

function physical(s: ArchState, linear: bigint): bigint | null {
  return translate((a) => readPhys(s, a, 8), s.cr3, linear).physical;
}

function readLinear(s: ArchState, linear: bigint, size: number): bigint | null {
  const p = physical(s, linear);
  return p === null ? null : readPhys(s, p, size);
}

/** Copies `bytes` to linear `address` (page by page), returning new memory; null if unmapped. */
function writeLinear(s: ArchState, memory: Map<number, Uint8Array>, linear: bigint, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const p = physical(s, linear + BigInt(i));
    if (p === null) return false;
    const n = Number(p >> 12n);
    let page = memory.get(n);
    if (page === undefined || page === s.memory.get(n)) {
      const copy = new Uint8Array(PAGE_SIZE);
      if (page !== undefined) copy.set(page);
      memory.set(n, (page = copy));
    }
    page[Number(p & 0xfffn)] = bytes[i]!;
  }
  return true;
}

function readBytes(s: ArchState, linear: bigint, size: number): Uint8Array | null {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const v = readLinear(s, linear + BigInt(i), 1);
    if (v === null) return null;
    out[i] = Number(v);
  }
  return out;
}

const cpl = (s: ArchState): number => s.cs.selector & 3;
const endsWith = (bytes: Uint8Array | undefined, tail: readonly number[]): boolean =>
  bytes !== undefined && bytes.length >= tail.length && tail.every((b, i) => bytes[bytes.length - tail.length + i] === b);
const hasRexW = (bytes: Uint8Array | undefined): boolean => bytes !== undefined && [...bytes].some((b) => (b & 0xf8) === 0x48);

// ------------------------------------------------------------------------------------------------
// Event delivery in 64-bit mode: where the frame went, and moving it

interface Delivery {
  /** The IST index of the gate (0: none). */
  readonly ist: number;
  /** The stack pointer the delivery started from, before alignment (old RSP, RSPn or ISTn). */
  readonly start: bigint;
  readonly frameSize: number;
}

function delivery(before: ArchState, event: Extract<EngineEvent, { kind: "delivered" }>, after: ArchState): Delivery | null {
  if (after.cs.l !== 1) return null;
  const gateAddress = before.idtr.base + 16n * BigInt(event.vector);
  const low = readLinear(before, gateAddress, 8);
  const high = readLinear(before, gateAddress + 8n, 8);
  if (low === null || high === null) return null;
  const ist = decodeGate(low, high).ist & 7;
  const tss = (offset: number) => readLinear(before, before.tr.base + BigInt(offset), 8);
  const start = ist !== 0 ? tss(TSS_OFFSETS.ist(ist)) : cpl(after) < cpl(before) ? tss(TSS_OFFSETS.rsp(cpl(after))) : before.gpr[4]!;
  if (start === null) return null;
  return { ist, start, frameSize: event.errorCode === undefined ? 40 : 48 };
}

/** The state with the delivery frame moved from where the correct CPU put it to `newRsp`. */
function moveFrame(before: ArchState, after: ArchState, frameSize: number, newRsp: bigint): ArchState | null {
  const rsp = after.gpr[4]!;
  if (newRsp === rsp) return null;
  const frame = readBytes(after, rsp, frameSize);
  const old = readBytes(before, rsp, frameSize);
  if (frame === null || old === null) return null;
  const memory = new Map(after.memory);
  if (!writeLinear(after, memory, rsp, old) || !writeLinear(after, memory, newRsp, frame)) return null;
  const gpr = [...after.gpr];
  gpr[4] = newRsp;
  return { ...after, gpr, memory };
}

// ------------------------------------------------------------------------------------------------
// The bugs

export const PLANTED_BUGS: readonly PlantedBug[] = [
  {
    name: "sysret-no-r11-mask",
    description: "SYSRET loads RFLAGS from R11 without the mask: RF and reserved bits 3, 5, 15, 22–31 kept, bit 1 not forced (VM and bits 63:32, outside the model, still dropped)",
    rule: "SYSRET-05",
    families: ["syscall"],
    rewrite: (before, event, after) => {
      const bytes = event.instruction?.bytes;
      if (event.kind !== "retired" || !endsWith(bytes, [0x0f, 0x07]) || !hasRexW(bytes)) return null;
      const rflags = before.gpr[11]! & 0xfffd_ffffn;
      return after.rflags === rflags ? null : { state: { ...after, rflags }, event };
    },
  },
  {
    name: "iretq-same-level-keeps-ss-rsp",
    description: "IRETQ to the same privilege level pops RIP, CS and RFLAGS only: SS:RSP are not popped",
    rule: "IRETQ-10",
    families: ["iret"],
    rewrite: (before, event, after) => {
      const bytes = event.instruction?.bytes;
      if (event.kind !== "retired" || !endsWith(bytes, [0xcf]) || !hasRexW(bytes) || before.cs.l !== 1 || cpl(before) !== cpl(after)) return null;
      const gpr = [...after.gpr];
      gpr[4] = BigInt.asUintN(64, before.gpr[4]! + 24n);
      const state = { ...after, gpr, ss: before.ss };
      return state.gpr[4] === after.gpr[4] && before.ss === after.ss ? null : { state, event };
    },
  },
  {
    name: "delivery-no-stack-alignment",
    description: "64-bit event delivery pushes its frame without aligning RSP down to 16 bytes first",
    rule: "DELIVER-15",
    families: ["delivery"],
    rewrite: (before, event, after) => {
      if (event.kind !== "delivered") return null;
      const d = delivery(before, event, after);
      if (d === null || (d.start & 15n) === 0n) return null;
      const state = moveFrame(before, after, d.frameSize, BigInt.asUintN(64, d.start - BigInt(d.frameSize)));
      return state === null ? null : { state, event };
    },
  },
  {
    name: "ist-off-by-one",
    description: "event delivery through a gate with IST = n takes its stack from the TSS slot of IST n+1",
    rule: "DELIVER-12",
    families: ["delivery"],
    rewrite: (before, event, after) => {
      if (event.kind !== "delivered") return null;
      const d = delivery(before, event, after);
      if (d === null || d.ist === 0) return null;
      const wrong = readLinear(before, before.tr.base + BigInt(TSS_OFFSETS.ist(d.ist) + 8), 8);
      if (wrong === null) return null;
      const state = moveFrame(before, after, d.frameSize, BigInt.asUintN(64, (wrong & ~15n) - BigInt(d.frameSize)));
      return state === null ? null : { state, event };
    },
  },
  {
    name: "swapgs-noop",
    description: "SWAPGS does nothing (GS.base and KERNEL_GS_BASE are not exchanged)",
    rule: "SWAPGS-03",
    families: ["syscall", "msrcr"],
    rewrite: (before, event, after) => {
      if (event.kind !== "retired" || !endsWith(event.instruction?.bytes, [0x0f, 0x01, 0xf8])) return null;
      if (before.gs.base === after.gs.base) return null;
      return { state: { ...after, gs: { ...after.gs, base: before.gs.base }, kernelGsBase: before.kernelGsBase }, event };
    },
  },
  {
    name: "pf-error-code-no-us",
    description: "the #PF error code never has the U/S bit (bit 2) set",
    rule: "PF-02",
    families: ["paging"],
    rewrite: (before, event, after) => {
      if (event.kind !== "delivered" || event.vector !== 14 || event.errorCode === undefined || (event.errorCode & 4) === 0) return null;
      const errorCode = event.errorCode & ~4;
      const memory = new Map(after.memory);
      const slot = new Uint8Array(8);
      new DataView(slot.buffer).setBigUint64(0, BigInt(errorCode), true);
      if (!writeLinear(after, memory, after.gpr[4]!, slot)) return null;
      return { state: { ...after, memory }, event: { ...event, errorCode } };
    },
  },
];

export const PLANTED_BUG_NAMES: readonly string[] = PLANTED_BUGS.map((b) => b.name);

export function plantedBug(name: string): PlantedBug | undefined {
  return PLANTED_BUGS.find((b) => b.name === name);
}

/** The name a broken engine goes by (its hello's name; campaigns and reports print it). */
export function plantedEngineName(engine: string, bug: PlantedBug): string {
  return `${engine} with ${bug.name}`;
}

// ------------------------------------------------------------------------------------------------
// The broken engine

/** `inner` with `bug` planted. Slower than `inner` (it reads the whole state around each step). */
export class PlantedEngine implements Engine {
  private profile: ProfileName = "intel";
  private written: PhysicalRange[] = [];

  constructor(private readonly inner: Engine, private readonly bug: PlantedBug) {}

  load(state: ArchState, profile: ProfileName): void {
    this.profile = profile;
    this.written = [];
    this.inner.load(state, profile);
  }

  step(): EngineEvent {
    const before = this.inner.state();
    const event = this.inner.step();
    const after = this.inner.state();
    const buggy = this.bug.rewrite(before, event, after);
    if (buggy === null) return event;
    this.written = unionRanges(this.written, this.inner.touched());
    this.inner.load(buggy.state, this.profile);
    return buggy.event;
  }

  run(maxSteps: number): EngineStop {
    let steps = 0;
    for (;;) {
      const idle = this.inner.run(0);
      if (idle.reason !== "limit") return { reason: idle.reason, steps };
      if (steps >= maxSteps) return { reason: "limit", steps };
      const event = this.step();
      if (event.kind === "unsupported" || event.kind === "memory-limit") return { reason: event.kind, steps, event };
      steps++;
      if (event.kind === "shutdown") return { reason: "shutdown", steps };
    }
  }

  state(memory?: readonly PhysicalRange[]): ArchState {
    return this.inner.state(memory);
  }

  raise(event: RaiseRequest): void {
    this.inner.raise(event);
  }

  touched(): readonly PhysicalRange[] {
    return unionRanges(this.written, this.inner.touched());
  }
}
