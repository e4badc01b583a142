// The undo log of the register writes a step makes in place. A run owns its working record of the
// machine's registers (spec/step/step.ts `run`), and a step's Transaction writes that record and
// its register array in place instead of copying them first; each such write is logged here with
// the value it overwrote, so a step that faults takes its writes back (`rollBack`), as the memory
// draft's journal takes back its memory writes (spec/machine/physical-memory.ts).
import { copyRegisters, type MachineRegisters, type MutableRegisters } from "../machine/machine.ts";

export class RegisterJournal {
  /** One entry per write: the record or register array written, the field name or register
   *  number, and the value it overwrote. Entries past `length` are dead (kept to be overwritten). */
  private readonly targets: object[] = [];
  private readonly keys: (string | number)[] = [];
  private readonly values: unknown[] = [];
  private length = 0;

  /** Where the journal stands: `rollBack(mark)` undoes every write logged after this call. */
  mark(): number {
    return this.length;
  }

  /** Logs that `target[key]`, now `old`, is about to be written. */
  log(target: object, key: string | number, old: unknown): void {
    const n = this.length++;
    this.targets[n] = target;
    this.keys[n] = key;
    this.values[n] = old;
  }

  /** Undoes the writes logged since `mark`, newest first. */
  rollBack(mark: number): void {
    for (let i = this.length - 1; i >= mark; i--) (this.targets[i] as Record<string | number, unknown>)[this.keys[i]!] = this.values[i];
    this.length = mark;
  }

  /** `rollBack(mark)`, and `record`'s RIP and RFLAGS set back to `rip` and `rflags`: a step writes
   *  those two in place unlogged (every step writes them), so whoever takes a step back on its
   *  working record restores them from the values it began with. */
  rollBackRecord(mark: number, record: MachineRegisters, rip: bigint, rflags: bigint): void {
    this.rollBack(mark);
    const m = record as MutableRegisters;
    m.rip = rip;
    m.rflags = rflags;
  }

  /** Drops the log: the writes so far can no longer be taken back (a run, after each step). */
  forget(): void {
    this.length = 0;
  }

  /**
   * A copy of `record` as it was at `mark`, with `registers` (its register array then) as it was:
   * the writes logged since on either are undone on the copy, not on them. The copy shares nothing
   * that is written in place.
   */
  copyAsAt(mark: number, record: MachineRegisters, registers: readonly bigint[]): MachineRegisters {
    const copy: MutableRegisters = copyRegisters(record);
    let gpr: bigint[] | null = null;
    for (let i = this.length - 1; i >= mark; i--) {
      const target = this.targets[i];
      if (target === record) (copy as Record<string, unknown>)[this.keys[i] as string] = this.values[i];
      else if (target === registers) (gpr ??= registers.slice())[this.keys[i] as number] = this.values[i] as bigint;
    }
    // Its own array either way: `registers` may be written in place after this.
    copy.gpr = gpr ?? registers.slice();
    return copy;
  }
}
