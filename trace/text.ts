// Trace records as text, one line a step (`ringspec run FILE --trace`):
//   5  0x10004  syscall  [retired]  rcx=0x10006 r11=0x202 rip=0x11000 cs.selector=0x8 ...
// step, linear address, disassembly, what the step did, and the new value of everything it
// changed. Field names drop the format's group (`regs.`, `sregs.`, `msrs.`) to stay short; RIP is
// shown only when it did not simply move past the instruction; RFLAGS shows the flags that flipped.
import type { TraceChange, TraceEvent, TraceRecord } from "./record.ts";

const SOURCE_NAMES = { exception: "exception", software: "software interrupt", external: "external interrupt", nmi: "NMI" } as const;

/** A short name for what a step did. */
export function describeEvent(event: TraceEvent): string {
  switch (event.kind) {
    case "retired":
    case "halted":
    case "shutdown":
      return event.kind;
    case "delivered": {
      const code = event.error_code === null ? "" : ` error code 0x${event.error_code.toString(16)}`;
      return `delivered vector ${event.vector} (${SOURCE_NAMES[event.source]})${code}`;
    }
    case "io":
      return `${event.direction} port 0x${event.port.toString(16)} size ${event.size} value ${event.value}`;
    case "unsupported":
      return `unsupported: ${event.reason}`;
    case "memory-limit":
      return `memory limit: ${event.reason}`;
    case "exited":
      return `exited with value ${event.value}`;
  }
}

const FLAG_NAMES: readonly (readonly [string, bigint])[] = [
  ["CF", 1n << 0n], ["PF", 1n << 2n], ["AF", 1n << 4n], ["ZF", 1n << 6n], ["SF", 1n << 7n],
  ["TF", 1n << 8n], ["IF", 1n << 9n], ["DF", 1n << 10n], ["OF", 1n << 11n], ["IOPL0", 1n << 12n],
  ["IOPL1", 1n << 13n], ["NT", 1n << 14n], ["RF", 1n << 16n], ["VM", 1n << 17n], ["AC", 1n << 18n],
  ["VIF", 1n << 19n], ["VIP", 1n << 20n], ["ID", 1n << 21n],
];

/** "+IF -TF": the flags that flipped. */
export function flagChanges(before: bigint, after: bigint): string {
  const parts: string[] = [];
  for (const [name, bit] of FLAG_NAMES) {
    if ((before & bit) === (after & bit)) continue;
    parts.push(((after & bit) !== 0n ? "+" : "-") + name);
  }
  return parts.join(" ");
}

/** Longest memory change shown in full. */
const MAX_SHOWN_BYTES = 64;

function changeText(c: TraceChange): string {
  const after = String(c.after);
  if (c.field.startsWith("memory@")) {
    const bytes = after.length / 2;
    const more = bytes > MAX_SHOWN_BYTES ? `…(${bytes} bytes)` : "";
    return `mem[${c.field.slice("memory@".length)}]=${after.slice(0, 2 * MAX_SHOWN_BYTES)}${more}`;
  }
  const name = c.field.replace(/^(regs|sregs|msrs)\./, "");
  if (c.field === "regs.rflags") return `${name}=${after} (${flagChanges(BigInt(String(c.before)), BigInt(after))})`;
  return `${name}=${after}`;
}

/** Where the step's RIP goes when the instruction does not branch. */
function sequentialRip(record: TraceRecord): string | undefined {
  const i = record.instruction;
  if (i === null || i.length === 0) return undefined;
  const mask = i.bitness === 64 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
  return `0x${((BigInt(record.rip) + BigInt(i.length)) & mask).toString(16)}`;
}

/** The text of what ran: the disassembly, or what the step was instead. */
function instructionText(record: TraceRecord): string {
  if (record.instruction !== null) return record.instruction.disassembly;
  const kind = record.event.kind;
  return kind === "halted" || kind === "shutdown" || kind === "exited" ? `(${kind})` : "(event at instruction boundary)";
}

/** The timer's countdown moving down by one: what every counted instruction does (docs/devices.md),
 *  so a line shows it only when it does something else (a reload, a tick). */
function countedDown(c: TraceChange): boolean {
  return c.field === "devices.timer.countdown" && typeof c.before === "number" && c.after === c.before - 1 && c.after !== 0;
}

/** One trace line. */
export function traceLine(record: TraceRecord): string {
  const sequential = sequentialRip(record);
  const changes = record.changes.filter((c) => !(c.field === "regs.rip" && c.after === sequential) && !countedDown(c)).map(changeText);
  return `${record.step}  ${record.linear}  ${instructionText(record)}  [${describeEvent(record.event)}]${changes.length === 0 ? "" : "  " + changes.join(" ")}`;
}
