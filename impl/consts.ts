// Numbering shared by every impl/ module: register slots, segment fields, RFLAGS bits, access
// classes, step statuses. Plain numeric constants so the block compiler can inline them.
//
// Using these constants: the hot modules (machine, deliver, system, flags, exec, engine) import
// this module (and insn.ts) as a namespace and copy the names they use into module-local consts
// (`const { CS, SEL } = constsModule;`). V8 folds a module-local const into optimized code, but
// loads an imported binding from its module cell, with a hole check, at every use — which made up
// a large share of a privilege transition's cost. This file and insn.ts import nothing, so their
// values exist before any importer is evaluated (no cycle can leave a copy undefined).

// ---- general registers: Machine.regs holds lo/hi int32 halves, regs[2n] = low, regs[2n+1] = high ----
export const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;
export const R11 = 11;
/** regs[RIP_LO], regs[RIP_HI]: the instruction pointer. */
export const RIP_LO = 32, RIP_HI = 33;

// ---- segment registers (SDM Sreg order, then TR and LDTR) ----
export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, TR = 6, LDTR = 7;
/** Fields of one segment register in Machine.segments (stride SEG_STRIDE): selector, base halves,
 *  byte-granular limit, and the hidden attributes packed as one word (ATTR, the VMX
 *  access-rights layout: A_* below). */
export const SEL = 0, BASE_LO = 1, BASE_HI = 2, LIMIT = 3, ATTR = 4;
export const SEG_STRIDE = 8;
/** ATTR bits: type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16. A descriptor's
 *  bytes 5–6 map onto it as (dword1 >>> 8) & 0xf0ff. */
export const A_TYPE = 0xf, A_S = 1 << 4, A_DPL_SHIFT = 5, A_P = 1 << 7, A_AVL = 1 << 12, A_L = 1 << 13,
  A_DB = 1 << 14, A_G = 1 << 15, A_UNUSABLE = 1 << 16;
export function attrDpl(a: number): number {
  return (a >> A_DPL_SHIFT) & 3;
}

// ---- RFLAGS ----
export const CF = 1 << 0, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7, TF = 1 << 8, IF = 1 << 9,
  DF = 1 << 10, OF = 1 << 11, IOPL = 3 << 12, NT = 1 << 14, RF = 1 << 16, VM = 1 << 17, AC = 1 << 18,
  VIF = 1 << 19, VIP = 1 << 20, ID = 1 << 21;
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** The RFLAGS bits SYSRET loads from R11 in 64-bit mode (SDM SYSRET: RFLAGS ← (R11 & 3C7FD7H) | 2). */
export const SYSRET_RFLAGS = 0x3c7fd7;

// ---- control registers / EFER ----
export const CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_ET = 16, CR0_NE = 32, CR0_WP = 1 << 16,
  CR0_AM = 1 << 18, CR0_NW = 1 << 29, CR0_CD = 1 << 30, CR0_PG = 1 << 31;
export const CR0_DEFINED = CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | CR0_PG;
export const CR4_TSD = 1 << 2, CR4_PAE = 1 << 5, CR4_PGE = 1 << 7, CR4_UMIP = 1 << 11, CR4_SMEP = 1 << 20,
  CR4_SMAP = 1 << 21;
export const EFER_SCE = 1, EFER_LME = 1 << 8, EFER_LMA = 1 << 10, EFER_NXE = 1 << 11;

// ---- Machine.msr: the modelled MSRs as lo/hi int32 pairs ----
export const STAR_LO = 0, STAR_HI = 1, LSTAR_LO = 2, LSTAR_HI = 3, CSTAR_LO = 4, CSTAR_HI = 5, FMASK_LO = 6,
  FMASK_HI = 7, KERNEL_GS_BASE_LO = 8, KERNEL_GS_BASE_HI = 9, SYSENTER_CS_LO = 10, SYSENTER_ESP_LO = 12,
  SYSENTER_EIP_LO = 14, APIC_BASE_LO = 16;
export const MSR_SLOTS = 18;

// ---- Machine.debug: DR0–DR3, DR6, DR7 as lo/hi int32 pairs ----
export const DR0_LO = 0, DR1_LO = 2, DR2_LO = 4, DR3_LO = 6, DR6_LO = 8, DR7_LO = 10;
export const DEBUG_SLOTS = 12;

// ---- exception vectors ----
export const DE = 0, DB_VEC = 1, NMI_VEC = 2, BP = 3, OF_VEC = 4, UD = 6, DF_VEC = 8, TS = 10, NP = 11,
  SS_VEC = 12, GP = 13, PF_VEC = 14, AC_VEC = 17;
/** Pseudo-vector: guest memory would exceed the engine's page budget (not architectural). */
export const VEC_MEMLIMIT = 256;

// ---- memory access classes: one bit each; a TLB entry holds the set allowed without a walk ----
export const C_UR = 1, C_UW = 2, C_UX = 4;
/** Supervisor data accesses that SMAP checks (implicit ones, or explicit with AC = 0). */
export const C_SR = 8, C_SW = 32;
/** Explicit supervisor data accesses with RFLAGS.AC = 1 (SMAP does not apply). */
export const C_SRA = 16, C_SWA = 64;
export const C_SX = 128;
export const C_WRITE = C_UW | C_SW | C_SWA;
export const C_USER = C_UR | C_UW | C_UX;
export const C_FETCH = C_UX | C_SX;

// ---- physical pages and the memory pool's slot flags (memory/pool.ts says what each flag does) ----
export const PAGE_SHIFT = 12;
export const PAGE_BYTES = 1 << PAGE_SHIFT;
/** The offset-in-page bits of an address. */
export const PAGE_OFFSET_MASK = PAGE_BYTES - 1;
/** Slot flags: the frame holds page-table entries a walk has used (F_PT), decoded code (F_CODE),
 *  was written (F_TOUCHED), holds a system-table entry a cache was filled from (F_SYS). */
export const F_PT = 1, F_CODE = 2, F_TOUCHED = 4, F_SYS = 8;
/** Slot flags whose frames never get TLB write classes, so every write reaches noteWrite. */
export const F_GUARDED = F_PT | F_CODE | F_SYS;

// ---- interrupt shadow ----
export const SHADOW_NONE = 0, SHADOW_STI = 1, SHADOW_MOVSS = 2;

// ---- statuses returned by instruction handlers and blocks ----
/** Completed; continue with the next instruction. */
export const ST_OK = 0;
/** Faulted: Machine.faultVector / faultErrorCode describe the exception; RIP is the faulting
 *  instruction. */
export const ST_FAULT = 1;
/** Completed, but caches or modes the current block relies on may have changed: leave the block. */
export const ST_END = 2;
/** HLT completed: the CPU is halted. */
export const ST_HALT = 3;
/** Outside the modelled subset: nothing changed. */
export const ST_UNSUP = 4;
/** INT n / INT3 / INT1 / INTO raised an event: Machine.faultVector and Machine.softIntSource
 *  describe it. */
export const ST_SWINT = 5;
/** IN/OUT completed (Machine.io* describe it). */
export const ST_IO = 6;

// ---- event sources for delivery ----
/** Fault-class exception (pushes RF = 1, restartable RIP). */
export const EV_FAULT = 0;
/** Trap-class exception: single-step #DB, INT1 (EXT = 1, no DPL check). */
export const EV_TRAP = 1;
/** INT n, INT3, INTO (EXT = 0, gate DPL checked). */
export const EV_SOFT = 2;
export const EV_EXTERNAL = 3;
export const EV_NMI = 4;
/** INT1 (ICEBP): delivered as EV_TRAP (EXT = 1, no DPL check), reported as an exception (SWINT-04). */
export const EV_ICEBP = 5;
