// The instructions the C kernel's built image uses, from its objdump listings (kernel/c/build/
// *.objdump, written by build.sh), each decoded again with iced-x86 to name its form (the SDM's
// "MOV r/m64, r64", whether r/m is a register or memory, REP/LOCK), counted, and probed on each
// engine: the exact bytes of every distinct encoding are executed once in a kernel-mode probe
// state, and a step that stops `unsupported` means the engine does not model that encoding.
import { readFileSync } from "node:fs";
import iced from "iced-x86";
import type { EngineEvent } from "../../contract/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import { loadKernel, parseLoaderDescription } from "../loader/index.ts";
import { createEngine, KERNEL_ENGINE_NAMES, type KernelEngineName } from "../engines.ts";

const { Decoder, DecoderOptions, OpKind, Code } = iced;

export interface ListedInstruction {
  readonly image: string;
  readonly address: bigint;
  readonly bytes: Uint8Array;
  /** objdump's text (AT&T). */
  readonly text: string;
}

/** `  100010:\t48 8d 25 e9 ...\tlea    0x...(%rip),%rsp` lines of `objdump -d -w`. */
export function parseObjdump(listing: string, image: string): ListedInstruction[] {
  const out: ListedInstruction[] = [];
  for (const line of listing.split("\n")) {
    const m = /^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$/.exec(line);
    if (m === null) continue;
    const bytes = Uint8Array.from(m[2]!.split(" ").map((b) => parseInt(b, 16)));
    out.push({ image, address: BigInt(`0x${m[1]!}`), bytes, text: m[3]!.replace(/\s+/g, " ").trim() });
  }
  return out;
}

export interface Form {
  /** e.g. "MOV r/m64, r64 (memory)", "REP STOSQ", "SETE r/m8 (register)". */
  readonly name: string;
  readonly opcode: string;
}

/** The form of one encoding, as iced-x86 names it. */
export function formOf(bytes: Uint8Array): Form {
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  const insn = decoder.decode();
  try {
    if (insn.code === Code.INVALID) return { name: "(invalid)", opcode: "" };
    const info = insn.opCode;
    let rm = "";
    if (info.instructionString.includes("r/m")) {
      const operands = Array.from({ length: insn.opCount }, (_, i) => insn.opKind(i));
      rm = operands.includes(OpKind.Memory) ? " (memory)" : " (register)";
    }
    const prefix = (insn.hasLockPrefix ? "LOCK " : "") + (insn.hasRepPrefix ? "REP " : insn.hasRepnePrefix ? "REPNE " : "");
    return { name: `${prefix}${info.instructionString}${rm}`, opcode: info.opCodeString };
  } finally {
    insn.free();
    decoder.free();
  }
}

export type Support = { readonly supported: true; readonly event: string } | { readonly supported: false; readonly reason: string };

const PROBE_AT = 0x100000n;
const PROBE_DESCRIPTION = parseLoaderDescription({
  format: "ringspec-loader/1",
  image: { type: "raw", load_address: "0x100000" },
  // Every GPR points at mapped memory (2 MiB), so memory operands resolve; RSP well inside it.
  entry: { regs: Object.fromEntries(["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"].map((r) => [r, "0x200000"]).concat([["rsp", "0x280000"]])) },
});

let probeBase: ArchState | undefined;

/** One step of `bytes` in kernel mode (the loader's boot state); `unsupported` or not. */
export function probe(bytes: Uint8Array, engine: KernelEngineName): Support {
  probeBase ??= loadKernel(new Uint8Array(16), PROBE_DESCRIPTION).state;
  const page = new Uint8Array(4096);
  page.set(bytes);
  const memory = new Map(probeBase.memory);
  memory.set(Number(PROBE_AT >> 12n), page);
  const e = createEngine(engine);
  e.load({ ...probeBase, memory }, "intel");
  const event: EngineEvent = e.step();
  if (event.kind === "unsupported") return { supported: false, reason: event.reason };
  return { supported: true, event: event.kind === "delivered" ? `delivered vector ${event.vector}` : event.kind };
}

export interface FormRow {
  readonly form: Form;
  /** Static occurrences in the kernel's text and in the user programs' text. */
  readonly kernel: number;
  readonly user: number;
  readonly example: string;
  /** Distinct encodings (hex) → support per engine. */
  readonly encodings: ReadonlyMap<string, Readonly<Record<KernelEngineName, Support>>>;
}

const hexOf = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");

export function inventory(listed: readonly ListedInstruction[]): FormRow[] {
  const rows = new Map<string, { form: Form; kernel: number; user: number; example: string; encodings: Map<string, Record<KernelEngineName, Support>> }>();
  const probed = new Map<string, Record<KernelEngineName, Support>>();
  for (const insn of listed) {
    const form = formOf(insn.bytes);
    let row = rows.get(form.name);
    if (row === undefined) rows.set(form.name, (row = { form, kernel: 0, user: 0, example: insn.text, encodings: new Map() }));
    if (insn.image === "kernel") row.kernel++;
    else row.user++;
    const key = hexOf(insn.bytes);
    let support = probed.get(key);
    if (support === undefined) {
      support = Object.fromEntries(KERNEL_ENGINE_NAMES.map((name) => [name, probe(insn.bytes, name)])) as Record<KernelEngineName, Support>;
      probed.set(key, support);
    }
    row.encodings.set(key, support);
  }
  return [...rows.values()].sort((a, b) => a.form.name.localeCompare(b.form.name));
}

export const LISTINGS = ["kernel", "user-syscalls", "user-compute", "user-fault", "user-printer", "user-edge"] as const;

export function readListings(buildDir: string): ListedInstruction[] {
  return LISTINGS.flatMap((name) => parseObjdump(readFileSync(`${buildDir}/${name}.objdump`, "utf8"), name === "kernel" ? "kernel" : name));
}

/** "yes", "no", or "partly (n of m encodings)" for one engine over a row's encodings. */
export function supportSummary(row: FormRow, engine: KernelEngineName): string {
  const all = [...row.encodings.values()].map((s) => s[engine]);
  const yes = all.filter((s) => s.supported).length;
  return yes === all.length ? "yes" : yes === 0 ? "**no**" : `**partly** (${yes} of ${all.length} encodings)`;
}
