// The loader description (`ringspec-loader/1`): how to place an image in guest memory and start
// it, what the context-switch checker needs to know about the kernel, and the run's limits.
// Every field is validated (zod); the first bad one is reported as one line with its JSON path.
import { z } from "zod";
import { Hex64, RegsJson, ProfileNameSchema } from "../../contract/schema.ts";
import { jsonPath } from "../../contract/load.ts";
import { LoaderError } from "./errors.ts";

export const MIN_MEMORY = 2n << 20n;
/** The boot page tables map guest memory with 2 MiB pages from one page directory. */
export const MAX_MEMORY = 1n << 30n;
export const DEFAULT_MEMORY = 4n << 20n;
export const DEFAULT_BOOT_AREA = 0x1000n;
/** GDT, PML4, PDPT, PD, and a 16 KiB boot stack. */
export const BOOT_AREA_PAGES = 8n;

const PhysicalRangeJson = z
  .strictObject({ start: Hex64, end: Hex64 })
  .refine((r) => r.start < r.end, { message: "start must be below end" });

const SymbolName = z.string().regex(/^[A-Za-z_.$][A-Za-z0-9_.$]*$/, { message: "expected a symbol name (letters, digits, _ . $)" });

export const LoaderDescriptionJson = z.strictObject({
  format: z.literal("ringspec-loader/1"),
  /** An ELF64 executable, or a raw binary placed at load_address (entry defaults to it). */
  image: z
    .discriminatedUnion("type", [
      z.strictObject({ type: z.literal("elf") }),
      z.strictObject({ type: z.literal("raw"), load_address: Hex64, entry: Hex64.optional() }),
    ])
    .default({ type: "elf" }),
  /** Guest physical memory in bytes: [2 MiB, 1 GiB], a multiple of 4 KiB. */
  memory_size: Hex64.default(DEFAULT_MEMORY)
    .refine((v) => v >= MIN_MEMORY && v <= MAX_MEMORY, { message: "must be between 0x200000 (2 MiB) and 0x40000000 (1 GiB)" })
    .refine((v) => (v & 0xfffn) === 0n, { message: "must be a multiple of 4 KiB" }),
  /** Eight pages the loader fills with its boot GDT, page tables and stack. */
  boot_area: Hex64.default(DEFAULT_BOOT_AREA).refine((v) => (v & 0xfffn) === 0n, { message: "must be a multiple of 4 KiB" }),
  /** Register values that replace the boot protocol's (rip, rsp, rdi, rflags, ...). */
  entry: z.strictObject({ regs: RegsJson.partial() }).optional(),
  /** Symbols to add to (or override) the image's .symtab: name → virtual address. */
  symbols: z.record(SymbolName, Hex64).optional(),
  profile: ProfileNameSchema.optional(),
  limits: z
    .strictObject({
      max_steps: z.number().int().min(1).max(1_000_000_000).optional(),
      timeout_seconds: z.number().positive().max(86_400).optional(),
      console_bytes: z.number().int().min(0).max(64 * 1024 * 1024).optional(),
    })
    .optional(),
  /** What the context-switch checker (spec/context) needs to know about this kernel. */
  context: z
    .strictObject({
      /** Tasks are told apart by CR3 (default), or by the 8-byte value at this symbol (the
       *  current-task pointer) where tasks share an address space. */
      task_symbol: SymbolName.optional(),
      /** "per-task" (default): each task has its own kernel stack, so no task may run in user
       *  mode with TSS.RSP0 pointing at the stack of a task suspended in the kernel. "shared":
       *  one kernel stack for every task (WeensyOS style): RSP0 must simply never change. */
      kernel_stacks: z.enum(["per-task", "shared"]).optional(),
      /** Bytes below a kernel stack top that belong to that stack (default 0x1000). */
      kernel_stack_size: Hex64.refine((v) => v > 0n && v <= 1n << 24n, { message: "must be between 1 and 16 MiB" }).optional(),
      /** Physical ranges user mode must never reach (besides the image, the descriptor tables,
       *  the TSS, the page tables and the kernel stacks, which are always protected). */
      kernel_memory: z.array(PhysicalRangeJson).max(64).optional(),
    })
    .optional(),
});

export type LoaderDescription = z.output<typeof LoaderDescriptionJson>;

export const DEFAULT_DESCRIPTION: LoaderDescription = LoaderDescriptionJson.parse({ format: "ringspec-loader/1" });

/** Validates a parsed JSON value; throws LoaderError naming the first bad field. */
export function parseLoaderDescription(value: unknown): LoaderDescription {
  const result = LoaderDescriptionJson.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) throw new LoaderError("loader description: invalid");
  if (issue.code === "unrecognized_keys") throw new LoaderError(`${jsonPath([...issue.path, issue.keys[0] ?? "?"])}: unknown field`);
  // A bad key of `symbols`: zod reports the record's own message; name the rule instead.
  if (issue.code === "invalid_key") throw new LoaderError(`${jsonPath(issue.path)}: expected a symbol name (letters, digits, _ . $)`);
  throw new LoaderError(`${jsonPath(issue.path)}: ${issue.message}`);
}

export function parseLoaderDescriptionText(text: string): LoaderDescription {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new LoaderError(`not valid JSON (${(e as Error).message})`);
  }
  return parseLoaderDescription(value);
}
