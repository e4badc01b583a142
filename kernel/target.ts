// A kernel ready to run and check: its boot state, its vendor profile, what the context checker
// must know about it, and its symbols. From an image and loader description (kernel/loader), or
// built in: `demo` and `demo:VARIANT` (kernel/demo).
import type { ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { ContextConfig } from "../spec/context/index.ts";
import type { LoadedKernel } from "./loader/index.ts";
import { buildDemoKernel, VARIANT_NAMES, type VariantName } from "./demo/index.ts";

export interface KernelTarget {
  /** What to call it in reports: the image path, or `demo:VARIANT`. */
  readonly name: string;
  readonly state: ArchState;
  readonly profile: ProfileName;
  readonly context: ContextConfig;
  readonly symbols: ReadonlyMap<string, bigint>;
}

/** What the checker is told about a loaded image (its loader description's `context` block). */
export function contextConfig(loaded: LoadedKernel): ContextConfig {
  const c = loaded.description.context;
  const symbol = c?.task_symbol;
  return {
    ...(symbol !== undefined ? { taskSymbol: { name: symbol, address: loaded.symbols.get(symbol)! } } : {}),
    kernelStacks: c?.kernel_stacks ?? "per-task",
    kernelStackSize: c?.kernel_stack_size ?? 0x1000n,
    kernelMemory: [
      // The image's segments; not the loader's boot area, which a kernel may reuse after boot.
      ...loaded.placed.filter((p) => !p.what.startsWith("the loader's boot area")).map((p) => ({ start: p.start, end: p.end, what: `the kernel image (${p.what})` })),
      ...(c?.kernel_memory ?? []).map((r, i) => ({ start: r.start, end: r.end, what: `kernel memory (context.kernel_memory[${i}])` })),
    ],
  };
}

export function loadedTarget(name: string, loaded: LoadedKernel): KernelTarget {
  return { name, state: loaded.state, profile: loaded.profile, context: contextConfig(loaded), symbols: loaded.symbols };
}

/** `demo` or `demo:VARIANT`, or undefined when `name` is not a built-in kernel. */
export function builtInTarget(name: string, options: { short?: boolean } = {}): KernelTarget | undefined {
  if (name !== "demo" && !name.startsWith("demo:")) return undefined;
  const variant = name === "demo" ? undefined : name.slice(5);
  if (variant !== undefined && !(VARIANT_NAMES as readonly string[]).includes(variant))
    throw new Error(`unknown demo variant ${JSON.stringify(variant)} (variants: ${VARIANT_NAMES.join(", ")})`);
  const demo = buildDemoKernel({ ...(variant !== undefined ? { variant: variant as VariantName } : {}), ...(options.short === true ? { short: true } : {}) });
  return { name, state: demo.state, profile: "intel", context: demo.context, symbols: demo.symbols };
}
