// After installing a state, each emulator engine reads the CPU back and checks it against what it
// asked for, so that a state the emulator silently changed (a field it clamps, a flag it drops)
// is reported for that case instead of being run as if it were the requested one. The check is
// the project's one comparison (contract/compare.ts) under its `loaded` rule: every field as
// asked, but the attributes of a hidden part marked unusable (emulators keep none).
import type { ArchState } from "../../contract/state.ts";
import { compareStates } from "../../contract/compare.ts";

/** The first CPU field (memory aside) where `installed` differs from `asked`, or null. `ignore`:
 *  field patterns the emulator cannot observe. */
export function compareInstalled(asked: ArchState, installed: Omit<ArchState, "memory">, ignore: readonly string[] = []): string | null {
  const { differences } = compareStates(asked, { ...installed, memory: asked.memory }, { rule: "loaded", memory: [], unobservable: ignore });
  const first = differences[0];
  return first === undefined ? null : `${first.field} = ${String(first.b)} (asked ${String(first.a)})`;
}

/** Fields the firmware images do not install and the emulator engines do not read back yet (the
 *  SYSENTER MSRs, IA32_APIC_BASE and the debug registers, added to the state for issue 9): the
 *  engines report them at their power-up values and list them as unobservable, so a comparison
 *  says "not compared" for them. */
export const UNINSTALLED_REGISTERS: readonly string[] = [
  "msrs.SYSENTER_CS", "msrs.SYSENTER_ESP", "msrs.SYSENTER_EIP", "msrs.APIC_BASE",
  "sregs.dr0", "sregs.dr1", "sregs.dr2", "sregs.dr3", "sregs.dr6", "sregs.dr7",
];
