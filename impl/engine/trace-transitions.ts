// SYSCALL and SYSRETQ written out in a trace's generated code (engine/trace.ts), so that a
// syscall round trip stays in one optimised function: the registers they read and write are the
// trace's locals, the saved RFLAGS is computed from the flag producer's locals, and nothing is
// stored into the Machine that the run loop would not see anyway.
//
// The same checks and updates as system.ts execSyscall/execSysret for 64-bit mode (the trace runs
// only 64-bit blocks), with the same rule IDs. Every value they depend on — EFER.SCE, STAR, LSTAR,
// FMASK, CR0.AM, the CPL — is read from the live Machine each time, never copied into the source,
// so an MSR or control-register write can never leave a trace stale. The one choice fixed in the
// source is the vendor profile's SYSRET SS handling, which a Machine keeps for life (load() builds
// a new Machine, and traces die with it). When a check fails, nothing has been changed and the
// trace runs the instruction's handler instead (the fault path).
import * as constsModule from "../consts.ts";
import { FLAT_CODE64_DPL0, FLAT_CODE64_DPL3, FLAT_DATA_DPL0, FLAT_DATA_DPL3 } from "../system.ts";

const {
  AC, ATTR, BASE_HI, BASE_LO, CS, EFER_SCE, FMASK_LO, LIMIT, LSTAR_HI, LSTAR_LO, RF, SEG_STRIDE, SEL, SS, STAR_HI, SYSRET_RFLAGS, TF,
} = constsModule;

/** Statements loading a flat segment (base 0, limit 4 GiB) into segments `sg` at `seg`. */
function flat(seg: number, selector: string, attr: number): string {
  const b = seg * SEG_STRIDE;
  return `sg[${b + SEL}] = ${selector}; sg[${b + BASE_LO}] = 0; sg[${b + BASE_HI}] = 0; sg[${b + LIMIT}] = -1; sg[${b + ATTR}] = ${attr};`;
}

/** SYSCALL's checks in 64-bit mode (SYSCALL-01: EFER.SCE = 1), as a condition. */
export function syscallChecks(): string {
  return `(m.efer & ${EFER_SCE}) !== 0`;
}

/**
 * SYSCALL's updates (SYSCALL-03..08) as statements: RCX and R11 are the locals `rcx`/`r11`
 * ([lo, hi]), `flags` the expression of RFLAGS as it stands (RF is 0: compiled code runs with it
 * cleared), (nextLo, nextHi) the next instruction. Leaves the new RFLAGS in `nf` and the target RIP
 * in `tl`/`th`; the Machine's mode is CPL 0, 64-bit (Machine.updateMode for what is known here:
 * EFER.LMA is set, CS.L = 1; Machine.supervisorAccess). The TF trap after it (SYSCALL-10) is the caller's: its guard leaves
 * the trace when TF = 1.
 */
export function syscallUpdates(rcx: readonly [string, string], r11: readonly [string, string], flags: string,
  nextLo: string, nextHi: string): string {
  return `const fl = ${flags}; const ms = m.msr, sg = m.segments;` +
    // SYSCALL-03, 04
    ` ${rcx[0]} = ${nextLo}; ${rcx[1]} = ${nextHi}; ${r11[0]} = fl; ${r11[1]} = 0;` +
    // SYSCALL-05 (bits 63:32 of RFLAGS are 0: FMASK's high half masks nothing)
    ` const nf = (fl & ~ms[${FMASK_LO}] & ${~RF}) | 2; m.flags = nf; m.lazyOp = 0;` +
    // SYSCALL-06, 07
    ` const cs = ms[${STAR_HI}] & 65535; ${flat(CS, "cs & 65532", FLAT_CODE64_DPL0)} ${flat(SS, "(cs + 8) & 65535", FLAT_DATA_DPL0)}` +
    // SYSCALL-08
    ` const tl = ms[${LSTAR_LO}], th = ms[${LSTAR_HI}];` +
    // The access classes by RFLAGS.AC (SMAP's override of explicit accesses).
    ` m.cpl = 0; m.mode64 = true; m.supervisorAccess((nf & ${AC}) !== 0);`;
}

/** SYSRETQ's checks from 64-bit mode (SYSRET-01 EFER.SCE, SYSRET-02 CPL 0, SYSRET-03 RCX
 *  canonical — the non-canonical case is the handler's: its outcome is the profile's), as a
 *  condition over RCX's high half `rcxHi`. */
export function sysretChecks(rcxHi: string): string {
  return `(m.efer & ${EFER_SCE}) !== 0 && m.cpl === 0 && (${rcxHi} >> 15) === (${rcxHi} >> 31)`;
}

/**
 * SYSRETQ's updates (SYSRET-04..07) as statements, RCX being the locals `rcx` and R11's low half
 * `r11Lo`: RIP is left to the caller (it is RCX), the new RFLAGS in `nf`; the Machine's mode is
 * CPL 3, 64-bit (Machine.userAccess: #AC checks when CR0.AM = RFLAGS.AC = 1). `keepSs`: the
 * profile keeps SS's hidden part (contract/profile.ts sysretSsAttributes).
 */
export function sysretUpdates(r11Lo: string, keepSs: boolean): string {
  const ssSel = "((base + 8) | 3) & 65535";
  return `const sg = m.segments;` +
    // SYSRET-05
    ` const nf = (${r11Lo} & ${SYSRET_RFLAGS}) | 2; m.flags = nf; m.lazyOp = 0;` +
    // SYSRET-06, 07
    ` const base = (m.msr[${STAR_HI}] >>> 16) & 65535; ${flat(CS, "((base + 16) | 3) & 65535", FLAT_CODE64_DPL3)}` +
    ` ${keepSs ? `sg[${SS * SEG_STRIDE + SEL}] = ${ssSel};` : flat(SS, ssSel, FLAT_DATA_DPL3)}` +
    ` m.cpl = 3; m.mode64 = true; m.userAccess((nf & ${AC}) !== 0);`;
}

/** The TF trap after SYSCALL/SYSRET (SYSCALL-10, SYSRET-09) when leaving the trace. */
export function trapAfter(): string {
  return `if ((nf & ${TF}) !== 0) m.pendingDebugTrap = true;`;
}
