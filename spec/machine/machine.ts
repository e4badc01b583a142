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

/**
 * Writes `value` into field `key` of `m` (a record the caller owns) and returns what the field held.
 * One named store per field, the most written first (RFLAGS: every arithmetic instruction): a
 * keyed store `m[key] = value` that sees every field name is V8's slow megamorphic path (a few per cent of the interrupt loop, where every
 * delivery, IRET and SWAPGS updates segments and the run state). The `never` makes a field added
 * to the machine without a case here a compile error.
 */
export function exchangeField(m: MutableRegisters, key: keyof MutableRegisters, value: unknown): unknown {
  switch (key) {
    case "rflags": { const old = m.rflags; m.rflags = value as MutableRegisters["rflags"]; return old; }
    case "rip": { const old = m.rip; m.rip = value as MutableRegisters["rip"]; return old; }
    case "cpu": { const old = m.cpu; m.cpu = value as MutableRegisters["cpu"]; return old; }
    case "gs": { const old = m.gs; m.gs = value as MutableRegisters["gs"]; return old; }
    case "kernelGsBase": { const old = m.kernelGsBase; m.kernelGsBase = value as MutableRegisters["kernelGsBase"]; return old; }
    case "cs": { const old = m.cs; m.cs = value as MutableRegisters["cs"]; return old; }
    case "ss": { const old = m.ss; m.ss = value as MutableRegisters["ss"]; return old; }
    case "gpr": { const old = m.gpr; m.gpr = value as MutableRegisters["gpr"]; return old; }
    case "devices": { const old = m.devices; m.devices = value as MutableRegisters["devices"]; return old; }
    case "cr2": { const old = m.cr2; m.cr2 = value as MutableRegisters["cr2"]; return old; }
    case "ds": { const old = m.ds; m.ds = value as MutableRegisters["ds"]; return old; }
    case "es": { const old = m.es; m.es = value as MutableRegisters["es"]; return old; }
    case "fs": { const old = m.fs; m.fs = value as MutableRegisters["fs"]; return old; }
    case "tr": { const old = m.tr; m.tr = value as MutableRegisters["tr"]; return old; }
    case "ldtr": { const old = m.ldtr; m.ldtr = value as MutableRegisters["ldtr"]; return old; }
    case "gdtr": { const old = m.gdtr; m.gdtr = value as MutableRegisters["gdtr"]; return old; }
    case "idtr": { const old = m.idtr; m.idtr = value as MutableRegisters["idtr"]; return old; }
    case "cr0": { const old = m.cr0; m.cr0 = value as MutableRegisters["cr0"]; return old; }
    case "cr3": { const old = m.cr3; m.cr3 = value as MutableRegisters["cr3"]; return old; }
    case "cr4": { const old = m.cr4; m.cr4 = value as MutableRegisters["cr4"]; return old; }
    case "cr8": { const old = m.cr8; m.cr8 = value as MutableRegisters["cr8"]; return old; }
    case "efer": { const old = m.efer; m.efer = value as MutableRegisters["efer"]; return old; }
    case "star": { const old = m.star; m.star = value as MutableRegisters["star"]; return old; }
    case "lstar": { const old = m.lstar; m.lstar = value as MutableRegisters["lstar"]; return old; }
    case "cstar": { const old = m.cstar; m.cstar = value as MutableRegisters["cstar"]; return old; }
    case "fmask": { const old = m.fmask; m.fmask = value as MutableRegisters["fmask"]; return old; }
    case "sysenterCs": { const old = m.sysenterCs; m.sysenterCs = value as MutableRegisters["sysenterCs"]; return old; }
    case "sysenterEsp": { const old = m.sysenterEsp; m.sysenterEsp = value as MutableRegisters["sysenterEsp"]; return old; }
    case "sysenterEip": { const old = m.sysenterEip; m.sysenterEip = value as MutableRegisters["sysenterEip"]; return old; }
    case "apicBase": { const old = m.apicBase; m.apicBase = value as MutableRegisters["apicBase"]; return old; }
    case "dr0": { const old = m.dr0; m.dr0 = value as MutableRegisters["dr0"]; return old; }
    case "dr1": { const old = m.dr1; m.dr1 = value as MutableRegisters["dr1"]; return old; }
    case "dr2": { const old = m.dr2; m.dr2 = value as MutableRegisters["dr2"]; return old; }
    case "dr3": { const old = m.dr3; m.dr3 = value as MutableRegisters["dr3"]; return old; }
    case "dr6": { const old = m.dr6; m.dr6 = value as MutableRegisters["dr6"]; return old; }
    case "dr7": { const old = m.dr7; m.dr7 = value as MutableRegisters["dr7"]; return old; }
    default: {
      const missing: never = key;
      throw new Error(`exchangeField: unknown field ${String(missing)}`);
    }
  }
}

/** Writes `patch`'s fields into `m` (a record the caller owns); absent and undefined fields are
 *  left alone. */
export function assignRegisters(m: MutableRegisters, patch: Partial<MachineRegisters>): void {
  for (const key in patch) {
    const value = patch[key as keyof MachineRegisters];
    if (value !== undefined) exchangeField(m, key as keyof MachineRegisters, value);
  }
}

/** `{ ...m, ...patch }` with the Machine's one shape. */
export function patchMachine(m: Machine, patch: Partial<Machine>): Machine {
  // Memory is the record's, not a register field: exchangeField knows register fields only.
  const { memory, ...registers } = patch;
  const copy = copyRecord(m, memory ?? m.memory);
  assignRegisters(copy, registers);
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
