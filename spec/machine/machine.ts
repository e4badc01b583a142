// The spec's machine: the format's ArchState with persistent physical memory. Immutable: every
// transition returns a new Machine and leaves its input untouched.
//
// Every Machine, and every segment, table register, run state and device record in it, is built
// by one function here, so that each kind has one object shape: the transitions read these
// fields on every instruction, and a read site that has seen one shape is a plain load where one
// that has seen several is a lookup.
import type { ArchState, CpuRunState, Segment, TableRegister, TimerState } from "../../contract/state.ts";
import { PhysicalMemory } from "./physical-memory.ts";

export interface Machine extends Omit<ArchState, "memory"> {
  readonly memory: PhysicalMemory;
}

/**
 * Every field of a Machine but its memory: registers, segment caches, MSRs, run state and devices.
 * What a transition reads through its Transaction (`t.m`); while a step or a run works, memory is
 * the Transaction's draft (spec/machine/physical-memory.ts), and a Machine with a PhysicalMemory
 * is made only for the caller (`withMemory`).
 */
export type MachineRegisters = Omit<Machine, "memory">;

/** A record of the Machine's fields that a step owns and writes in place (spec/transaction). */
export type MutableRegisters = { -readonly [K in keyof MachineRegisters]: MachineRegisters[K] };

export function machineFromState(s: ArchState): Machine {
  return withMemory({
    ...s,
    cs: segment(s.cs), ds: segment(s.ds), es: segment(s.es), fs: segment(s.fs), gs: segment(s.gs), ss: segment(s.ss),
    tr: segment(s.tr), ldtr: segment(s.ldtr),
    gdtr: tableRegister(s.gdtr), idtr: tableRegister(s.idtr),
    cpu: cpuRunState(s.cpu),
    devices: { timer: timerState(s.devices.timer), exitValue: s.devices.exitValue },
    gpr: [...s.gpr],
  }, PhysicalMemory.fromPages(s.memory));
}

export function stateFromMachine(m: Machine): ArchState {
  return { ...m, memory: m.memory.pages() };
}

/**
 * A copy of `m` with the Machine's one shape: a literal naming every field (V8 copies a spread of
 * this 37-field object on a generic path, and a literal in a few tens of ns). The return type makes
 * the compiler reject this function if ArchState gains a field it does not copy.
 */
export function copyMachine(m: Machine): Machine {
  return copyRecord(m, m.memory) as Machine;
}

/**
 * The registers of `m` as a record the caller owns. It is the same literal as a Machine's, with
 * `memory` undefined (the type hides the field), so the transitions' read sites see one object
 * shape whether they are handed a Machine or a step's record.
 */
export function copyRegisters(m: MachineRegisters): MutableRegisters {
  return copyRecord(m, undefined);
}

/** A copy of `m`'s registers with a register array of its own: a record a step or run may write
 *  in place (spec/transaction/register-journal.ts) without changing `m`. */
export function withOwnRegisters(m: MachineRegisters): MutableRegisters {
  const copy = copyRecord(m, undefined);
  copy.gpr = m.gpr.slice();
  return copy;
}

/** `registers` with `memory`: a Machine for the caller. */
export function withMemory(registers: MachineRegisters, memory: PhysicalMemory): Machine {
  return copyRecord(registers, memory) as Machine;
}

function copyRecord(m: MachineRegisters, memory: PhysicalMemory | undefined): MutableRegisters & { memory: PhysicalMemory | undefined } {
  return {
    gpr: m.gpr,
    rip: m.rip,
    rflags: m.rflags,
    cs: m.cs,
    ds: m.ds,
    es: m.es,
    fs: m.fs,
    gs: m.gs,
    ss: m.ss,
    tr: m.tr,
    ldtr: m.ldtr,
    gdtr: m.gdtr,
    idtr: m.idtr,
    cr0: m.cr0,
    cr2: m.cr2,
    cr3: m.cr3,
    cr4: m.cr4,
    cr8: m.cr8,
    efer: m.efer,
    star: m.star,
    lstar: m.lstar,
    cstar: m.cstar,
    fmask: m.fmask,
    kernelGsBase: m.kernelGsBase,
    sysenterCs: m.sysenterCs,
    sysenterEsp: m.sysenterEsp,
    sysenterEip: m.sysenterEip,
    apicBase: m.apicBase,
    dr0: m.dr0,
    dr1: m.dr1,
    dr2: m.dr2,
    dr3: m.dr3,
    dr6: m.dr6,
    dr7: m.dr7,
    memory,
    cpu: m.cpu,
    devices: m.devices,
  };
}

/** Writes `patch`'s fields into `m` (a record the caller owns); absent and undefined fields are
 *  left alone. */
export function assignRegisters(m: MutableRegisters, patch: Partial<MachineRegisters>): void {
  const fields = m as Record<string, unknown>;
  for (const key in patch) {
    // RIP and RFLAGS, which nearly every instruction updates (RF-01, status flags, branches), by
    // name: a keyed load and store that sees every field name is a lookup, about 2x slower.
    if (key === "rip") {
      if (patch.rip !== undefined) m.rip = patch.rip;
    } else if (key === "rflags") {
      if (patch.rflags !== undefined) m.rflags = patch.rflags;
    } else {
      const value = (patch as Record<string, unknown>)[key];
      if (value !== undefined) fields[key] = value;
    }
  }
}

/** `{ ...m, ...patch }` with the Machine's one shape. */
export function patchMachine(m: Machine, patch: Partial<Machine>): Machine {
  const copy = copyRecord(m, patch.memory ?? m.memory);
  assignRegisters(copy, patch);
  return copy as Machine;
}

/** `{ ...m, ...patch }` for registers. */
export function patchRegisters(m: MachineRegisters, patch: Partial<MachineRegisters>): MachineRegisters {
  const copy = copyRegisters(m);
  assignRegisters(copy, patch);
  return copy;
}

/** `s` with another base (`segment({ ...s, base })` without the spread). */
export function segmentWithBase(s: Segment, base: bigint): Segment {
  return {
    selector: s.selector, base, limit: s.limit, type: s.type, s: s.s, dpl: s.dpl, present: s.present,
    db: s.db, l: s.l, g: s.g, avl: s.avl, unusable: s.unusable,
  };
}

/** A segment register's visible and hidden parts, with the one Segment shape. */
export function segment(s: Segment): Segment {
  return {
    selector: s.selector, base: s.base, limit: s.limit, type: s.type, s: s.s, dpl: s.dpl, present: s.present,
    db: s.db, l: s.l, g: s.g, avl: s.avl, unusable: s.unusable,
  };
}

function tableRegister(t: TableRegister): TableRegister {
  return { base: t.base, limit: t.limit };
}

/** The run state with the one CpuRunState shape. */
export function cpuRunState(c: CpuRunState): CpuRunState {
  return {
    pendingIrq: c.pendingIrq, pendingNmi: c.pendingNmi, nmiBlocked: c.nmiBlocked, shadow: c.shadow,
    halted: c.halted, shutdown: c.shutdown, pendingDebugTrap: c.pendingDebugTrap,
  };
}

function timerState(t: TimerState): TimerState {
  return { period: t.period, vector: t.vector, countdown: t.countdown, waitingEoi: t.waitingEoi };
}
