// Segment caches Bochs 2.7 stops on (its process exits) rather than emulating. The engine installs
// hidden segment state verbatim through RSM (engines/firmware/save-area.ts: the attribute word's
// bit 8 is Bochs's "valid" flag, set for a usable segment), so a state can carry caches that no
// segment load produces.
//
// Facts from Bochs 2.7's cpu/ sources (smm.cc, stack.cc, descriptor.h):
// - RSM: a segment register (ES, CS, SS, DS, FS, GS) restored as valid with S = 0 (a system
//   descriptor) fails the restore with a panic, "SMM restore: restored valid non segment N", and
//   Bochs exits. Always, before the case's first instruction: the engine refuses such a state
//   before starting Bochs (bochsRsmRefusal).
// - Stack accesses outside 64-bit mode (its stack helpers; `mov eax, [ebp]`, `popf` and `ret` all
//   reached them in the session-9 table) with SS valid assert SS.P = 1 and that type bit 1 is set
//   ("IS_DATA_SEGMENT_WRITEABLE", which tests only bit 1: W for data, R for code); a failed
//   assertion ends Bochs. An invalid (unusable) SS gets #SS(0) there instead, and in 64-bit mode
//   the helpers look at no SS attribute at all (as the SDM has it: 64-bit mode takes even a NULL
//   SS at CPL < 3, MOV's #GP(0) conditions). So an execute/read code type (10, 11, 14, 15) in SS
//   runs (docs/deviations, IRETQ-02). Whether a case reaches a stack access is only known by
//   running it (of the table's 10 starting states with such an SS, 2 passed: their run faults
//   before any stack access), so this one is not refused up front: the engine names it when
//   Bochs's log shows the assertion (bochsExitError in engine.ts), as unsupported state.
import type { ArchState, Segment } from "../../contract/state.ts";

const EFER_LMA = 1n << 10n;
const TYPE_WRITABLE = 0b0010;

const RESTORED_BY_RSM = ["es", "cs", "ss", "ds", "fs", "gs"] as const;

/** Whether Bochs's CPU runs in 64-bit mode in this state (IA-32e mode and CS.L = 1). */
function in64BitMode(state: ArchState): boolean {
  return (state.efer & EFER_LMA) !== 0n && state.cs.l === 1;
}

/** Bochs's "valid" flag as the boot image sets it. */
function valid(s: Segment): boolean {
  return s.unusable === 0;
}

/** null if Bochs 2.7's RSM takes these segment caches, else the reason (one line, naming the field). */
export function bochsRsmRefusal(state: ArchState): string | null {
  for (const name of RESTORED_BY_RSM) {
    const s = state[name];
    if (valid(s) && s.s === 0) {
      return `sregs.${name}: S = 0 (system type ${s.type}) in a usable ${name.toUpperCase()}: Bochs's RSM stops on it ("restored valid non segment")`;
    }
  }
  return null;
}

/**
 * null if Bochs 2.7's stack accesses take this SS, else what is wrong with it: SS usable, outside
 * 64-bit mode, and not present or without type bit 1 (one line, naming the field).
 */
export function bochsStackSegmentProblem(state: ArchState): string | null {
  const ss = state.ss;
  if (in64BitMode(state) || !valid(ss)) return null;
  if (ss.present === 0) return "sregs.ss: not present outside 64-bit mode";
  if ((ss.type & TYPE_WRITABLE) === 0) return `sregs.ss: type ${ss.type} without its W/R bit (bit 1) outside 64-bit mode`;
  return null;
}

/** Bochs's failed assertion on SS in its stack access path (stack.cc), as its log has it. */
export function isStackSegmentAssertion(panic: string): boolean {
  return /failed assertion "IS_DATA_SEGMENT_WRITEABLE\([^"]*BX_SEG_REG_SS[^"]*\)"|failed assertion "[^"]*BX_SEG_REG_SS\]\.cache\.p"/.test(panic);
}
