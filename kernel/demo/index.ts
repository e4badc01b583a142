// kernel/demo: the Chickadee / entry_64.S-style teaching kernel, written in TypeScript through the
// guest kit's assembler, and its deliberately broken variants.
export { buildDemoKernel, type DemoKernel, type DemoOptions } from "./build.ts";
export { VARIANTS, VARIANT_NAMES, type VariantName } from "./variants.ts";
export { userPrograms, FULL_WORKLOAD, SHORT_WORKLOAD, type Workload } from "./programs.ts";
