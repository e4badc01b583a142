// kernel/loader: kernel images (ELF64 or raw) and loader descriptions → a boot state.
export { LoaderError } from "./errors.ts";
export { parseElf, isElf, MAX_IMAGE_BYTES, type ElfImage, type ElfSegment } from "./elf.ts";
export {
  LoaderDescriptionJson, parseLoaderDescription, parseLoaderDescriptionText, DEFAULT_DESCRIPTION,
  DEFAULT_MEMORY, MAX_MEMORY, MIN_MEMORY, type LoaderDescription,
} from "./description.ts";
export { bootState, BOOT_LAYOUT, GuestMemory } from "./boot.ts";
export { loadKernel, type LoadedKernel, type PhysicalSpan } from "./load.ts";
