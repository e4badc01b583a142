// Rules of linear memory access: canonical checks, 4-level paging, #PF, SMEP/SMAP and #AC.
// Digest IDs (§19–21) plus finer IDs, one per check, carried by the faults they raise.
import { defineRules } from "../rules/rule.ts";

const PAGING = "SDM Vol. 3A §4.5.4";
const RIGHTS = "SDM Vol. 3A §4.6.1";

export const PAGING_RULES = defineRules([
  // §21 CANON
  { id: "CANON-01", description: "A linear address is canonical when bits 63:47 are all equal (4-level paging)", source: "SDM Vol. 1 §3.3.7.1" },
  { id: "CANON-GP", description: "A data access with a non-canonical byte (first or last) raises #GP(0) before paging", source: "SDM Vol. 3A §6.15 #GP; digest §21" },
  { id: "CANON-SS", description: "A stack reference (push/pop, RSP/RBP-based) with a non-canonical byte raises #SS(0) before paging", source: "SDM Vol. 3A §6.15 #SS; digest §21" },
  { id: "CANON-FETCH", description: "An instruction fetch from a non-canonical address raises #GP(0)", source: "SDM Vol. 3A §6.15 #GP; digest §21" },

  // §19 PF
  { id: "PF-01", description: "A #PF carries the faulting linear address (all 64 bits) for CR2; a page-crossing access reports the first byte on the faulting page", source: "SDM Vol. 3A §4.7, §6.15 interrupt 14" },
  { id: "PF-02", description: "#PF error code: P (0 = not present), W/R (write), U/S (user-mode access), RSVD, I/D (fetch, only with EFER.NXE = 1 or CR4.SMEP = 1)", source: "SDM Vol. 3A §4.7 Figure 4-12" },
  { id: "PF-03", description: "U/S in the error code reflects the access: implicit supervisor accesses report 0 even at CPL 3", source: "SDM Vol. 3A §4.6, §4.7" },
  { id: "PF-04", description: "Access rights combine over all levels: R/W and U/S ANDed, XD ORed", source: RIGHTS, recordedWith: ["PF-04-US", "PF-04-RW", "PF-04-WP", "PF-04-NX"] },
  { id: "PF-05", description: "A non-canonical address never reaches paging (#GP/#SS, not #PF)", source: "SDM Vol. 1 §3.3.7.1; digest §21" },
  { id: "PF-NP", description: "A not-present entry (P = 0) at any level ends the walk: #PF with P = 0", source: "SDM Vol. 3A §4.5.4, §4.7" },
  { id: "PF-RSVD-PHYS", description: "Bits 51:MAXPHYADDR set in a present entry: #PF with P = 1, RSVD = 1", source: PAGING },
  { id: "PF-RSVD-XD", description: "Bit 63 (XD) set in a present entry while EFER.NXE = 0 is reserved: #PF with P = 1, RSVD = 1", source: PAGING },
  { id: "PF-RSVD-PML4E-PS", description: "PS (bit 7) set in a present PML4E is reserved: #PF with P = 1, RSVD = 1", source: PAGING },
  { id: "PF-RSVD-PS1G", description: "Bits 29:13 set in a PDPTE mapping a 1 GiB page are reserved: #PF with P = 1, RSVD = 1", source: PAGING },
  { id: "PF-RSVD-PS2M", description: "Bits 20:13 set in a PDE mapping a 2 MiB page are reserved: #PF with P = 1, RSVD = 1", source: PAGING },
  { id: "PF-04-US", description: "A user-mode access to a supervisor-mode address (U/S = 0 at some level): #PF with P = 1", source: RIGHTS },
  { id: "PF-04-RW", description: "A user-mode write to a read-only address (R/W = 0 at some level) faults whatever CR0.WP", source: RIGHTS },
  { id: "PF-04-WP", description: "A supervisor-mode write (explicit or implicit) to a read-only address faults only when CR0.WP = 1", source: RIGHTS },
  { id: "PF-04-NX", description: "With EFER.NXE = 1, an instruction fetch from an address with XD = 1 at some level: #PF with P = 1, I/D = 1", source: RIGHTS },
  { id: "PF-ACCESSED", description: "A successful walk sets A in every entry it used; a faulting walk sets nothing", source: "SDM Vol. 3A §4.8; docs/model-choices.md" },
  { id: "PF-DIRTY", description: "A successful write sets D in the leaf entry (PTE, or the PDE/PDPTE of a large page)", source: "SDM Vol. 3A §4.8; docs/model-choices.md" },

  // §20 SMEP / SMAP / AC
  { id: "SMEP-01", description: "CR4.SMEP = 1: a supervisor-mode instruction fetch from a user-mode address: #PF with P = 1, I/D = 1, U/S = 0", source: RIGHTS },
  { id: "SMAP-01", description: "CR4.SMAP = 1: an explicit supervisor-mode data access to a user-mode address faults unless RFLAGS.AC = 1", source: RIGHTS },
  { id: "SMAP-02", description: "CR4.SMAP = 1: an implicit supervisor-mode data access to a user-mode address always faults, whatever RFLAGS.AC", source: RIGHTS },
  { id: "SMAP-06", description: "#AC(0): a misaligned data access at CPL 3 with CR0.AM = 1 and RFLAGS.AC = 1; supervisor accesses are never checked", source: "SDM Vol. 3A §6.15 interrupt 17" },
]);
