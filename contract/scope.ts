// What part of the architecture the engines model. A state outside it is refused rather than run
// with made-up semantics (legacy mode, 5-level paging, PCID, CET, FRED, virtualisation, ...).
import type { ArchState } from "./state.ts";
import { PAGE_BUDGET } from "./limits.ts";

/** Physical-address width of the modelled CPU. Paging-entry bits 51:MAXPHYADDR are reserved
 *  (vector README: bit 51 must be reserved), and MOV CR3 with bits above it set is #GP(0). */
export const MAXPHYADDR = 46;

const CR0_PE = 1n << 0n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;

/**
 * CR4 bits a state may have set (and MOV CR4 may set): TSD(2), DE(3), PSE(4, ignored under 4-level
 * paging), PAE(5), MCE(6), PGE(7, no TLB is modelled), PCE(8), OSFXSR(9), OSXMMEXCPT(10), UMIP(11),
 * FSGSBASE(16), PCIDE(17), OSXSAVE(18), SMEP(20), SMAP(21). The rest (VME, PVI, LA57, VMXE, SMXE,
 * PKE, CET, UINTR, FRED, ...) would change semantics the model does not implement.
 */
export const CR4_MODELLED =
  (1n << 2n) | (1n << 3n) | (1n << 4n) | (1n << 5n) | (1n << 6n) | (1n << 7n) | (1n << 8n) | (1n << 9n) |
  (1n << 10n) | (1n << 11n) | (1n << 16n) | (1n << 17n) | (1n << 18n) | (1n << 20n) | (1n << 21n);

/** DR7 bits that arm a breakpoint (L0–L3, G0–G3) or general detection (GD, bit 13): debug
 *  exceptions on a match are not modelled, so a state may not have them set (MOV DR7 setting them
 *  stops as unsupported: docs/model-choices.md, row "MOV DR"). */
export const DR7_ARMING = 0xffn | (1n << 13n);

/** EFER bits the model knows: SCE(0), LME(8), LMA(10), NXE(11). */
export const EFER_MODELLED = (1n << 0n) | (1n << 8n) | (1n << 10n) | (1n << 11n);

/** RFLAGS bits 63:32: reserved, and no 64-bit engine (nor the JSON-lines protocol's) can hold
 *  them. The reserved bits below (31:22, 15, 5, 3, and bit 1 = 1) are inside the domain: no
 *  instruction of a correct CPU makes them, but an engine under test may (a SYSRET that forgets
 *  R11's mask: conformance/planted.ts), and both engines must carry such a state to be compared. */
export const RFLAGS_OUTSIDE = ~((1n << 32n) - 1n) & ((1n << 64n) - 1n);

/**
 * null when the state is inside the model, else a short reason naming the field. The one input
 * domain of the engines: the loader (contract/load.ts) refuses such a state with the field named,
 * and both engines' load() refuse it with the same reason, so spec/ and impl/ run exactly the same
 * states.
 */
export function modelScopeViolation(s: ArchState): string | null {
  if (s.gpr.length !== 16) return "regs: expected 16 general-purpose registers";
  if ((s.rflags & RFLAGS_OUTSIDE) !== 0n) return `rflags: reserved bits 63:32 set (0x${(s.rflags & RFLAGS_OUTSIDE).toString(16)})`;
  if (s.cr0 >> 32n !== 0n) return "cr0: bits 63:32 are reserved (MOV to CR0 would raise #GP)";
  if (s.cr3 >> BigInt(MAXPHYADDR) !== 0n) return `cr3: bits 63:${MAXPHYADDR} set, above MAXPHYADDR (${MAXPHYADDR}; MOV to CR3 would raise #GP)`;
  if (s.cr8 >> 4n !== 0n) return "cr8: only bits 3:0 exist (the task-priority class)";
  if ((s.cr0 & CR0_PE) === 0n || (s.cr0 & CR0_PG) === 0n) return "cr0: paging and protection must be on (IA-32e mode only)";
  if ((s.cr4 & CR4_PAE) === 0n) return "cr4: PAE must be set (IA-32e mode only)";
  if ((s.efer & EFER_LME) === 0n || (s.efer & EFER_LMA) === 0n) return "efer: LME and LMA must be set (IA-32e mode only)";
  const cr4Extra = s.cr4 & ~CR4_MODELLED;
  if (cr4Extra !== 0n) return `cr4: bits 0x${cr4Extra.toString(16)} are outside the model (VME, PVI, LA57, VMXE, SMXE, PKE, CET, UINTR, FRED, ...)`;
  const eferExtra = s.efer & ~EFER_MODELLED;
  if (eferExtra !== 0n) return `efer: bits 0x${eferExtra.toString(16)} are outside the model`;
  if (s.dr6 >> 32n !== 0n) return "dr6: bits 63:32 are reserved (MOV to DR6 would raise #GP)";
  if (s.dr7 >> 32n !== 0n) return "dr7: bits 63:32 are reserved (MOV to DR7 would raise #GP)";
  if ((s.dr7 & DR7_ARMING) !== 0n) return "dr7: enabled breakpoints (L0–L3, G0–G3) and general detection (GD) are outside the model";
  if (s.cs.l === 1 && s.cs.db === 1) return "sregs.cs: L = 1 with D = 1 is not a valid IA-32e code segment";
  if ((s.rflags & (1n << 17n)) !== 0n) return "rflags: VM (virtual-8086 mode) is outside the model";
  const irq = s.cpu.pendingIrq;
  if (irq !== null && !(Number.isInteger(irq) && irq >= 0 && irq <= 255)) return "cpu.pending_irq: expected a vector 0-255 or null";
  return memoryViolation(s.memory);
}

/** Page numbers of physical memory the model has: below 2^MAXPHYADDR. */
const PAGES_IN_ADDRESS_SPACE = 2 ** (MAXPHYADDR - 12);

function memoryViolation(memory: ArchState["memory"]): string | null {
  if (memory.size > PAGE_BUDGET) return `memory: ${memory.size.toLocaleString("en-US")} pages, more than the page budget of ${PAGE_BUDGET.toLocaleString("en-US")} (${PAGE_BUDGET / 256} MiB)`;
  for (const [page, bytes] of memory) {
    if (!Number.isSafeInteger(page) || page < 0 || page >= PAGES_IN_ADDRESS_SPACE) {
      return `memory: page 0x${Number.isSafeInteger(page) && page >= 0 ? page.toString(16) : "?"}000 lies beyond the physical address width (MAXPHYADDR ${MAXPHYADDR})`;
    }
    if (bytes.length !== 4096) return `memory: page 0x${page.toString(16)}000 holds ${bytes.length} bytes, not 4096`;
  }
  return null;
}

