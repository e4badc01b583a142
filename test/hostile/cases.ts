// The hostile inputs of issue 8, built as files: guests that hog pages or make a block of every two
// bytes, documents with many memory entries or states outside the model, a large saved state.
// Sizes are parameters: `npm test` runs small but representative ones, `npm run fuzz` the issue's.
import type { ArchState } from "../../contract/state.ts";
import { stateDocumentText } from "../../contract/write-state.ts";
import { stateToJson } from "../../contract/state.ts";
import { DEFAULT_LAYOUT, layoutMemory, layoutState, type GuestMemory } from "../../guest/index.ts";

/** 64-bit little-endian bytes. */
function u64(v: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((v >> (8n * BigInt(i))) & 0xffn));
}

/** The shared layout with PDPT[1] mapping 1 GiB at physical 1 GiB (a 1 GiB page, supervisor,
 *  writable): room for guests that touch many pages. */
function withGigabyte(): GuestMemory {
  const m = layoutMemory(DEFAULT_LAYOUT);
  m.write64(0x2008n, 0x40000000n | 0x83n);
  return m;
}

function kernelAt(m: GuestMemory, code: readonly number[]): ArchState {
  m.write(0x10000n, code);
  return layoutState(DEFAULT_LAYOUT, m, { ring: 0 });
}

/** A small state whose guest writes one byte to each of `pages` fresh pages, then halts. */
export function pageHog(pages: number): ArchState {
  return kernelAt(withGigabyte(), [
    0x48, 0xb8, ...u64(0x40000000n), // mov rax, 0x40000000
    0x48, 0xb9, ...u64(BigInt(pages)), // mov rcx, pages
    0xc6, 0x00, 0x01, //                loop: mov byte [rax], 1
    0x48, 0x05, 0x00, 0x10, 0x00, 0x00, // add rax, 0x1000
    0x48, 0xff, 0xc9, //                dec rcx
    0x75, 0xf2, //                      jnz loop
    0xf4, //                            hlt
  ]);
}

/** `blocks` distinct two-byte blocks (`je $+2`: each ends its block, whichever way it goes) at
 *  physical 1 GiB, then a jump back to the first: a guest that asks a block cache for one entry per
 *  two bytes, forever. */
export function blockBomb(blocks: number): ArchState {
  const m = withGigabyte();
  const code = new Uint8Array(blocks * 2 + 5);
  for (let i = 0; i < blocks; i++) {
    code[2 * i] = 0x74;
    code[2 * i + 1] = 0x00;
  }
  // jmp rel32 back to 0x40000000
  const rel = -(blocks * 2 + 5);
  code.set([0xe9, rel & 0xff, (rel >> 8) & 0xff, (rel >> 16) & 0xff, (rel >>> 24) & 0xff], blocks * 2);
  m.write(0x40000000n, code);
  return kernelAt(m, [0x48, 0xb8, ...u64(0x40000000n), 0xff, 0xe0]); // mov rax, 0x40000000; jmp rax
}

/** A state with `bytes` bytes of non-zero memory in one contiguous run (pages of its own, at
 *  16 MiB, never touched by the guest, which halts at once). */
export function bigMemory(bytes: number): ArchState {
  const m = layoutMemory(DEFAULT_LAYOUT);
  const data = new Uint8Array(bytes);
  let x = 0x12345678;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = (x >>> 24) | 1;
  }
  m.write(0x1000000n, data);
  return kernelAt(m, [0xf4]);
}

/** A state document (JSON text) for `state`. */
export function stateFile(state: ArchState): string {
  return stateDocumentText(state, "intel");
}

/** A state document whose memory is `entries` one-byte entries on distinct pages (from 16 MiB),
 *  besides the layout's own; a guest that halts at once. */
export function manyEntries(entries: number): string {
  const base = stateToJson(kernelAt(layoutMemory(DEFAULT_LAYOUT), [0xf4]));
  const extra = Array.from({ length: entries }, (_, i) => ({ gpa: `0x${(0x1000000 + i * 4096).toString(16)}`, bytes: "5a" }));
  return JSON.stringify({ format: "ringspec-state/1", ...base, memory: [...base.memory, ...extra] });
}

/** A state document with entries that each straddle a page boundary: `entries` two-byte entries
 *  on pairs of pages of their own span twice as many pages (beyond the page budget with 32,769). */
export function straddlingEntries(entries: number): string {
  const base = stateToJson(kernelAt(layoutMemory(DEFAULT_LAYOUT), [0xf4]));
  const extra = Array.from({ length: entries }, (_, i) => ({ gpa: `0x${(0x1000000 + i * 8192 + 4095).toString(16)}`, bytes: "5a5a" }));
  return JSON.stringify({ format: "ringspec-state/1", ...base, memory: [...base.memory, ...extra] });
}

/** The halting kernel state as a JSON value, with `edit` applied (states the model refuses). */
export function editedState(edit: (s: ReturnType<typeof stateToJson> & Record<string, unknown>) => void): string {
  const s = { format: "ringspec-state/1", ...stateToJson(kernelAt(layoutMemory(DEFAULT_LAYOUT), [0xf4])) };
  edit(s);
  return JSON.stringify(s, null, 2);
}

/** The states impl's loader used to refuse and the format's loader accepted (issue 8, item 3):
 *  now the contract refuses each, naming the field. [name, document, the field the message names]. */
export function formerlyImplOnly(): [string, string, RegExp][] {
  return [
    ["RFLAGS bit 40", editedState((s) => (s.regs.rflags = "0x10000000002")), /rflags: reserved bits 63:32 set/],
    ["CR0 bit 33", editedState((s) => (s.sregs.cr0 = `0x${(0x200000000n | 0x80000011n).toString(16)}`)), /cr0: bits 63:32/],
    ["CR3 above MAXPHYADDR", editedState((s) => (s.sregs.cr3 = "0x800000001000")), /cr3: bits 63:46/],
    ["CR8 bit 4", editedState((s) => (s.sregs.cr8 = "0x10")), /cr8: only bits 3:0/],
    ["memory wrapping past 2^64", editedState((s) => s.memory.push({ gpa: "0xfffffffffffffff0", bytes: "00".repeat(32) })), /memory\[\d+\]\.gpa: the bytes run past the physical address width/],
    ["memory above MAXPHYADDR", editedState((s) => s.memory.push({ gpa: "0x400000000000", bytes: "01" })), /memory\[\d+\]\.gpa: the bytes run past/],
  ];
}
