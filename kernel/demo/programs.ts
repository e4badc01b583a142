// The demo kernel's user programs, each assembled at USER_CODE (its own address space maps it
// there). System calls: RAX = number (1 getpid, 2 yield, 3 write, 4 exit, 5 sleep), arguments in
// RDI and RSI, the result in RAX; SYSCALL overwrites RCX and R11.
import { Assembler, Code as C, Register as R, abs, mem, rip, type AssembledImage, type Section } from "../../guest/index.ts";
import { EDGE_PAGE, USER_CODE } from "./layout.ts";

export interface UserProgram {
  readonly name: string;
  readonly image: AssembledImage;
  /** Needs the top page of the canonical lower half mapped. */
  readonly edge: boolean;
}

const SYS = { getpid: 1, yield: 2, write: 3, exit: 4, sleep: 5 } as const;

function syscall(s: Section, n: number): void {
  s.emit(C.Mov_r32_imm32, R.EAX, n).emit(C.Syscall);
}

/** write(label, its length) — the message is defined with `message`. */
function write(s: Section, label: string, text: string): void {
  s.emit(C.Lea_r64_m, R.RDI, rip(label)).emit(C.Mov_r32_imm32, R.ESI, new TextEncoder().encode(text).length);
  syscall(s, SYS.write);
}

function exit(s: Section, status: number): void {
  s.emit(C.Mov_r32_imm32, R.EDI, status);
  syscall(s, SYS.exit);
  s.label(`hang_${status}`).emit(C.Jmp_rel8_64, `hang_${status}`);
}

function program(name: string, build: (s: Section, messages: Map<string, string>) => void, edge = false): UserProgram {
  const a = new Assembler();
  const s = a.section(USER_CODE, { name });
  const messages = new Map<string, string>();
  build(s, messages);
  for (const [label, text] of messages) s.label(label).ascii(text);
  return { name, image: a.assemble(), edge };
}

/** xorshift64 rounds, as the compute program runs them. */
export function xorshift(x: bigint, rounds: number): bigint {
  const M = (1n << 64n) - 1n;
  for (let i = 0; i < rounds; i++) {
    x ^= (x << 13n) & M;
    x ^= x >> 7n;
    x ^= (x << 17n) & M;
  }
  return x;
}

const COMPUTE_SEED = 0x9e3779b97f4a7c15n;

/** How much work the programs do: the full demo, or the shorter run `npm test` uses. */
export interface Workload {
  /** getpid calls of the syscalls program (a yield every 8). */
  readonly calls: number;
  /** xorshift rounds of the compute program. */
  readonly rounds: number;
}

export const FULL_WORKLOAD: Workload = { calls: 32, rounds: 1000 };
export const SHORT_WORKLOAD: Workload = { calls: 16, rounds: 250 };

export function userPrograms(work: Workload = FULL_WORKLOAD): UserProgram[] {
  const { calls, rounds } = work;
  return [
    // A system-call-heavy loop: getpid calls, a yield every 8; the counter and the sum live in
    // callee-saved registers (R12, R13), which every system call and yield must give back.
    program("syscalls", (s, m) => {
      s.emit(C.Mov_r32_imm32, R.R12D, calls).emit(C.Xor_r32_rm32, R.R13D, R.R13D);
      s.label("loop");
      syscall(s, SYS.getpid);
      s.emit(C.Add_r64_rm64, R.R13, R.RAX);
      s.emit(C.Test_rm8_imm8, R.R12L, 7).emit(C.Jne_rel8_64, "no_yield");
      syscall(s, SYS.yield);
      s.label("no_yield");
      s.emit(C.Dec_rm32, R.R12D).emit(C.Jne_rel8_64, "loop");
      s.emit(C.Cmp_rm64_imm32, R.R13, calls).emit(C.Jne_rel8_64, "wrong"); // pid 1, `calls` times
      m.set("ok", `syscalls: ${calls} getpid calls and ${Math.floor(calls / 8)} yields, registers intact\n`);
      write(s, "ok", m.get("ok")!);
      exit(s, 0);
      s.label("wrong");
      m.set("bad", "syscalls: WRONG: a register changed across a system call\n");
      write(s, "bad", m.get("bad")!);
      exit(s, 1);
    }),
    // A compute loop with no system calls: only the timer takes the CPU away from it. It checks
    // its result, which preemption must not disturb.
    program("compute", (s, m) => {
      s.emit(C.Mov_r64_imm64, R.RAX, COMPUTE_SEED).emit(C.Mov_r32_imm32, R.ECX, rounds);
      s.label("round");
      for (const [shift, left] of [[13, true], [7, false], [17, true]] as const)
        s.emit(C.Mov_r64_rm64, R.RDX, R.RAX).emit(left ? C.Shl_rm64_imm8 : C.Shr_rm64_imm8, R.RDX, shift).emit(C.Xor_r64_rm64, R.RAX, R.RDX);
      s.emit(C.Dec_rm32, R.ECX).emit(C.Jne_rel8_64, "round");
      s.emit(C.Mov_r64_imm64, R.RDX, xorshift(COMPUTE_SEED, rounds)).emit(C.Cmp_r64_rm64, R.RAX, R.RDX).emit(C.Jne_rel8_64, "wrong");
      m.set("ok", `compute: ${rounds} xorshift rounds, checksum right\n`);
      write(s, "ok", m.get("ok")!);
      exit(s, 0);
      s.label("wrong");
      m.set("bad", "compute: WRONG checksum\n");
      write(s, "bad", m.get("bad")!);
      exit(s, 1);
    }),
    // Touches an unmapped page: the kernel kills it.
    program("fault", (s, m) => {
      m.set("msg", "fault: writing to 0xdead000, which is not mapped\n");
      write(s, "msg", m.get("msg")!);
      s.emit(C.Mov_rm32_r32, abs(0xdead000n), R.EAX);
      m.set("alive", "fault: still alive?!\n");
      write(s, "alive", m.get("alive")!);
      exit(s, 1);
    }),
    // Prints three lines, sleeping two ticks after each.
    program("printer", (s, m) => {
      for (const n of [1, 2, 3]) {
        m.set(`line${n}`, `printer: line ${n} of 3\n`);
        write(s, `line${n}`, m.get(`line${n}`)!);
        s.emit(C.Mov_r32_imm32, R.EDI, 2);
        syscall(s, SYS.sleep);
      }
      exit(s, 0);
    }),
    // A SYSCALL in the last two bytes of the canonical lower half: its return RIP (RCX =
    // 0x800000000000) is not canonical, so the kernel must not SYSRETQ to it; its IRETQ faults in
    // ring 0 on the kernel stack, and the kernel kills the task.
    program("edge", (s, m) => {
      m.set("msg", "edge: SYSCALL at 0x7ffffffffffe, returning to a non-canonical address\n");
      write(s, "msg", m.get("msg")!);
      s.emit(C.Mov_r64_imm64, R.RDI, EDGE_PAGE + 0xffen);
      s.emit(C.Mov_rm16_imm16, mem(R.RDI), 0x050f); // syscall
      s.emit(C.Mov_r32_imm32, R.EAX, SYS.getpid).emit(C.Jmp_rm64, R.RDI);
    }, true),
  ];
}
