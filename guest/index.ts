// guest/: the guest kit — one assembler over iced-x86 (asm.ts), one description of the guest
// layout as data (layout.ts, with descriptors.ts and paging.ts), and the builder that turns a
// layout plus code into a machine state both engines load (build.ts). Imports: guest, contract,
// iced-x86.
export * from "./iced.ts";
export * from "./asm.ts";
export * from "./memory.ts";
export * from "./descriptors.ts";
export * from "./paging.ts";
export * from "./layout.ts";
export * from "./build.ts";
