// The spec's machine: the format's ArchState with persistent physical memory. Immutable: every
// transition returns a new Machine and leaves its input untouched.
import type { ArchState } from "../../contract/state.ts";
import { PhysicalMemory } from "./physical-memory.ts";

export interface Machine extends Omit<ArchState, "memory"> {
  readonly memory: PhysicalMemory;
}

export function machineFromState(s: ArchState): Machine {
  return { ...s, memory: PhysicalMemory.fromPages(s.memory) };
}

export function stateFromMachine(m: Machine): ArchState {
  return { ...m, memory: m.memory.pages() };
}

/**
 * `{ ...m, ...patch }`, written out field by field: V8 copies a spread of this 27-field object on a
 * generic path (about 1 µs here) but a literal naming every field in a few tens of ns, and the step
 * builds new Machines several times per instruction. The return type makes the compiler reject
 * this function if ArchState gains a field it does not copy.
 */
export function patchMachine(m: Machine, patch: Partial<Machine>): Machine {
  return {
    gpr: patch.gpr ?? m.gpr,
    rip: patch.rip ?? m.rip,
    rflags: patch.rflags ?? m.rflags,
    cs: patch.cs ?? m.cs,
    ds: patch.ds ?? m.ds,
    es: patch.es ?? m.es,
    fs: patch.fs ?? m.fs,
    gs: patch.gs ?? m.gs,
    ss: patch.ss ?? m.ss,
    tr: patch.tr ?? m.tr,
    ldtr: patch.ldtr ?? m.ldtr,
    gdtr: patch.gdtr ?? m.gdtr,
    idtr: patch.idtr ?? m.idtr,
    cr0: patch.cr0 ?? m.cr0,
    cr2: patch.cr2 ?? m.cr2,
    cr3: patch.cr3 ?? m.cr3,
    cr4: patch.cr4 ?? m.cr4,
    cr8: patch.cr8 ?? m.cr8,
    efer: patch.efer ?? m.efer,
    star: patch.star ?? m.star,
    lstar: patch.lstar ?? m.lstar,
    cstar: patch.cstar ?? m.cstar,
    fmask: patch.fmask ?? m.fmask,
    kernelGsBase: patch.kernelGsBase ?? m.kernelGsBase,
    sysenterCs: patch.sysenterCs ?? m.sysenterCs,
    sysenterEsp: patch.sysenterEsp ?? m.sysenterEsp,
    sysenterEip: patch.sysenterEip ?? m.sysenterEip,
    apicBase: patch.apicBase ?? m.apicBase,
    dr0: patch.dr0 ?? m.dr0,
    dr1: patch.dr1 ?? m.dr1,
    dr2: patch.dr2 ?? m.dr2,
    dr3: patch.dr3 ?? m.dr3,
    dr6: patch.dr6 ?? m.dr6,
    dr7: patch.dr7 ?? m.dr7,
    memory: patch.memory ?? m.memory,
    cpu: patch.cpu ?? m.cpu,
    devices: patch.devices ?? m.devices,
  };
}
