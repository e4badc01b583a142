// The smallest entry_64.S-style SYSCALL entry, shared by test guests: swapgs; save the user RSP
// in the per-CPU area; switch to the kernel stack; push/pop RCX; restore RSP; swapgs; sysretq.
import { Code, Register as R, abs, percpuOffset, type Assembler, type GuestLayout } from "../../guest/index.ts";

/** Emits the entry at the layout's LSTAR, as section (and label) `name`. */
export function emitSyscallEntry(a: Assembler, l: GuestLayout, name: string): void {
  const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
  a.section(l.msrs.lstar, { name })
    .label(name)
    .emit(Code.Swapgs)
    .emit(Code.Mov_rm64_r64, userRsp, R.RSP)
    .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
    .emit(Code.Push_r64, R.RCX)
    .emit(Code.Pop_r64, R.RCX)
    .emit(Code.Mov_r64_rm64, R.RSP, userRsp)
    .emit(Code.Swapgs)
    .emit(Code.Sysretq);
}
