// Bochs's log (with the CPU's debug messages on): what a step delivered, a HLT with IF = 0, a
// triple fault, and the register dump Bochs writes when the CPU shuts down.
//
//   00000008521d[CPU0  ] exception(0x0d): error_code=0000
//   00000008521d[CPU0  ] interrupt(): vector = 0d, TYPE = 3, EXT = 1
//   00000008522i[CPU0  ] WARNING: HLT instruction with IF=0!
//   00000000319e[CPU0  ] exception(): 3rd (14) exception with no resolution, shutdown status is 00h, resetting
import type { DeliverySource } from "../../contract/engine.ts";

export type BochsLogEntry =
  | { readonly kind: "exception"; readonly vector: number; readonly errorCode: number }
  | { readonly kind: "interrupt"; readonly vector: number; readonly type: number; readonly ext: number }
  | { readonly kind: "hlt-if0" }
  | { readonly kind: "triple-fault"; readonly vector: number }
  | { readonly kind: "panic"; readonly message: string };

const LINE = /^\d+([dieap])\[([A-Z0-9 ]{6})\] (.*)$/;
const EXCEPTION = /^exception\(0x([0-9a-f]{2})\): error_code=([0-9a-f]{4})$/;
const INTERRUPT = /^interrupt\(\): vector = ([0-9a-f]{2}), TYPE = (\d), EXT = ([01])$/;
const TRIPLE = /exception\(\): 3rd \((\d+)\) exception with no resolution/;

export function parseBochsLog(text: string): BochsLogEntry[] {
  const out: BochsLogEntry[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (m === null) continue;
    const [, level, , message] = m as unknown as [string, string, string, string];
    let x: RegExpExecArray | null;
    if ((x = EXCEPTION.exec(message)) !== null) out.push({ kind: "exception", vector: parseInt(x[1]!, 16), errorCode: parseInt(x[2]!, 16) });
    else if ((x = INTERRUPT.exec(message)) !== null) out.push({ kind: "interrupt", vector: parseInt(x[1]!, 16), type: Number(x[2]), ext: Number(x[3]) });
    else if (message === "WARNING: HLT instruction with IF=0!") out.push({ kind: "hlt-if0" });
    else if ((x = TRIPLE.exec(message)) !== null) out.push({ kind: "triple-fault", vector: Number(x[1]) });
    else if (level === "p") out.push({ kind: "panic", message: message.replace(/^>>PANIC<< /, "") });
  }
  return out;
}

/** The first panic message in `text` other than a triple fault's (why Bochs stopped), or undefined. */
export function firstPanic(text: string): string | undefined {
  return summarizeBochsStep(parseBochsLog(text)).panics[0];
}

/** Bochs's event types (TYPE = in its interrupt() message). */
const SOURCE_BY_TYPE: Readonly<Record<number, DeliverySource>> = {
  0: "external",
  2: "nmi",
  3: "exception",
  4: "software",
  // ICEBP (INT1): delivered like an exception (EXT = 1), as the spec reports it.
  5: "exception",
  6: "software",
};

const WITH_ERROR_CODE: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21]);

export interface BochsStepSummary {
  readonly delivered?: { readonly vector: number; readonly errorCode: number | undefined; readonly source: DeliverySource };
  readonly tripleFault: boolean;
  readonly haltedWithIf0: boolean;
  /** Panics other than the triple fault (Bochs stopped doing what a CPU does). */
  readonly panics: readonly string[];
}

export function summarizeBochsStep(entries: readonly BochsLogEntry[]): BochsStepSummary {
  let delivered: BochsStepSummary["delivered"];
  let lastException: { vector: number; errorCode: number } | undefined;
  let tripleFault = false;
  let haltedWithIf0 = false;
  const panics: string[] = [];
  for (const e of entries) {
    switch (e.kind) {
      case "exception":
        lastException = e;
        break;
      case "interrupt": {
        const source = SOURCE_BY_TYPE[e.type] ?? "exception";
        const errorCode =
          source === "exception" && WITH_ERROR_CODE.has(e.vector) && lastException?.vector === e.vector ? lastException.errorCode : undefined;
        delivered = { vector: e.vector, errorCode, source };
        break;
      }
      case "hlt-if0":
        haltedWithIf0 = true;
        break;
      case "triple-fault":
        tripleFault = true;
        break;
      case "panic":
        if (!/3rd \(\d+\) exception with no resolution/.test(e.message)) panics.push(e.message);
        break;
    }
  }
  return { ...(delivered === undefined ? {} : { delivered }), tripleFault, haltedWithIf0, panics };
}

/** The register dump Bochs logs when the CPU shuts down (only what it prints). */
export interface ShutdownDump {
  readonly gpr: readonly bigint[];
  readonly rip: bigint;
  readonly rflags: bigint;
  readonly segments: Readonly<Record<"cs" | "ds" | "ss" | "es" | "fs" | "gs", { selector: number; base: bigint; limit: number; g: number; db: number }>>;
  readonly fsBase: bigint;
  readonly gsBase: bigint;
  readonly cr0: bigint;
  readonly cr2: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
}

const FLAG_LETTERS: readonly (readonly [string, number])[] = [
  ["id", 21], ["vip", 20], ["vif", 19], ["ac", 18], ["vm", 17], ["rf", 16], ["nt", 14],
  ["of", 11], ["df", 10], ["if", 9], ["tf", 8], ["sf", 7], ["zf", 6], ["af", 4], ["pf", 2], ["cf", 0],
];

/** Parses the last register dump in `text` (lines `| RAX=...`, `|  CS:0008(...)`, ...). */
export function parseShutdownDump(text: string): ShutdownDump | undefined {
  const lines = text.split("\n").map((l) => {
    const m = LINE.exec(l);
    return m === null ? "" : m[3]!;
  });
  let start = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^\| RAX=/.test(lines[i]!)) {
      start = i;
      break;
    }
  }
  if (start === -1) return undefined;
  const block = lines.slice(start, start + 24).join("\n");
  const reg = (name: string) => {
    const m = new RegExp(`\\b${name}=([0-9a-f]{16})`).exec(block);
    return m === null ? undefined : BigInt("0x" + m[1]!);
  };
  const names = ["RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"];
  const gpr = names.map(reg);
  const flags = /\| IOPL=(\d) ((?:[a-zA-Z]+ ?)+)/.exec(block);
  const rip = /\| RIP=([0-9a-f]{16})/.exec(block);
  const cr02 = /\| CR0=0x([0-9a-f]+) CR2=0x([0-9a-f]+)/.exec(block);
  const cr34 = /\| CR3=0x([0-9a-f]+) CR4=0x([0-9a-f]+)/.exec(block);
  const fsBase = /MSR_FS_BASE:([0-9a-f]{16})/.exec(block);
  const gsBase = /MSR_GS_BASE:([0-9a-f]{16})/.exec(block);
  // EFER is printed just before the dump.
  const before = lines.slice(Math.max(0, start - 6), start).join("\n");
  const efer = /EFER\s+= 0x([0-9a-f]+)/.exec(before);
  if (gpr.some((v) => v === undefined) || flags === null || rip === null || cr02 === null || cr34 === null || fsBase === null || gsBase === null || efer === null) return undefined;
  let rflags = 2n | (BigInt(flags[1]!) << 12n);
  const letters = flags[2]!.trim().split(/\s+/);
  for (const [letter, bit] of FLAG_LETTERS) if (letters.includes(letter.toUpperCase())) rflags |= 1n << BigInt(bit);
  const segments: Record<string, { selector: number; base: bigint; limit: number; g: number; db: number }> = {};
  for (const name of ["CS", "DS", "SS", "ES", "FS", "GS"]) {
    const m = new RegExp(`\\|\\s+${name}:([0-9a-f]{4})\\([^)]*\\) ([0-9a-f]{8}) ([0-9a-f]{8}) ([01]) ([01])`).exec(block);
    if (m === null) return undefined;
    segments[name.toLowerCase()] = { selector: parseInt(m[1]!, 16), base: BigInt("0x" + m[2]!), limit: parseInt(m[3]!, 16), g: Number(m[4]), db: Number(m[5]) };
  }
  return {
    gpr: gpr as bigint[],
    rip: BigInt("0x" + rip[1]!),
    rflags,
    segments: segments as ShutdownDump["segments"],
    fsBase: BigInt("0x" + fsBase[1]!),
    gsBase: BigInt("0x" + gsBase[1]!),
    cr0: BigInt("0x" + cr02[1]!),
    cr2: BigInt("0x" + cr02[2]!),
    cr3: BigInt("0x" + cr34[1]!),
    cr4: BigInt("0x" + cr34[2]!),
    efer: BigInt("0x" + efer[1]!),
  };
}
