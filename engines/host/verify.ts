// After installing a state, each emulator engine reads the CPU back and checks it against what it
// asked for, so that a state the emulator silently changed (a field it clamps, a flag it drops)
// is reported for that case instead of being run as if it were the requested one.
import type { ArchState, Segment } from "../../contract/state.ts";
import { GPR_NAMES } from "../../contract/schema.ts";
import { hex } from "../../contract/hex.ts";

const SEGMENTS = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldtr"] as const;
const SEGMENT_FIELDS = ["selector", "base", "limit", "type", "s", "dpl", "present", "db", "l", "g", "avl", "unusable"] as const;

/** The first CPU field (memory aside) where `installed` differs from `asked`, or null. */
export function compareInstalled(asked: ArchState, installed: Omit<ArchState, "memory">, ignore: readonly string[] = []): string | null {
  const skip = new Set(ignore);
  const diff = (field: string, want: bigint | number | boolean | string | null, got: bigint | number | boolean | string | null) => {
    if (skip.has(field) || want === got) return null;
    const show = (v: typeof want) => (typeof v === "bigint" ? hex(v) : String(v));
    return `${field} = ${show(got)} (asked ${show(want)})`;
  };
  const checks: (string | null)[] = [];
  GPR_NAMES.forEach((name, i) => checks.push(diff(`regs.${name}`, asked.gpr[i]!, installed.gpr[i]!)));
  checks.push(diff("regs.rip", asked.rip, installed.rip), diff("regs.rflags", asked.rflags, installed.rflags));
  for (const name of SEGMENTS) {
    const want: Segment = asked[name];
    const got: Segment = installed[name];
    // An unusable hidden part has no meaningful attributes (QEMU keeps none).
    const fields = want.unusable === 1 ? (["selector", "unusable"] as const) : SEGMENT_FIELDS;
    for (const f of fields) checks.push(diff(`sregs.${name === "ldtr" ? "ldt" : name}.${f}`, want[f], got[f]));
  }
  for (const t of ["gdtr", "idtr"] as const) {
    checks.push(diff(`sregs.${t.slice(0, 3)}.base`, asked[t].base, installed[t].base), diff(`sregs.${t.slice(0, 3)}.limit`, asked[t].limit, installed[t].limit));
  }
  for (const c of ["cr0", "cr2", "cr3", "cr4", "cr8", "efer"] as const) checks.push(diff(`sregs.${c}`, asked[c], installed[c]));
  checks.push(
    diff("msrs.STAR", asked.star, installed.star),
    diff("msrs.LSTAR", asked.lstar, installed.lstar),
    diff("msrs.CSTAR", asked.cstar, installed.cstar),
    diff("msrs.SFMASK", asked.fmask, installed.fmask),
    diff("msrs.KERNEL_GS_BASE", asked.kernelGsBase, installed.kernelGsBase),
    diff("cpu.pending_irq", asked.cpu.pendingIrq, installed.cpu.pendingIrq),
    diff("cpu.pending_nmi", asked.cpu.pendingNmi, installed.cpu.pendingNmi),
    diff("cpu.nmi_blocked", asked.cpu.nmiBlocked, installed.cpu.nmiBlocked),
    diff("cpu.shadow", asked.cpu.shadow, installed.cpu.shadow),
    diff("cpu.halted", asked.cpu.halted, installed.cpu.halted),
    diff("cpu.pending_debug_trap", asked.cpu.pendingDebugTrap, installed.cpu.pendingDebugTrap),
  );
  return checks.find((c) => c !== null) ?? null;
}
