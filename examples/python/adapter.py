#!/usr/bin/env python3
"""A worked example of an engine for ringspec's JSON-lines protocol (docs/protocol.md), in Python.

The top half is the adapter every emulator needs: read one request per line on stdin, answer one
line on stdout (same id, in order), convert states between the protocol's JSON and the emulator.
The bottom half, `ToyCpu`, stands in for your emulator: it executes a handful of instructions
(SYSCALL, SYSRETQ, SWAPGS, INC r64, JMP rel8, NOP, HLT) in 64-bit mode with a 4-level page walk,
and reports anything else as `unsupported`. Replace it with calls into your emulator.

Try it:
    npx ringspec vectors check conformance/vectors/syscall-sysret-roundtrip.json \
        --engine process --cmd "python3 examples/python/adapter.py"
    npx ringspec conform --b process --cmd "python3 examples/python/adapter.py" \
        --families syscall --profile intel --runs 50
"""
import json
import sys

PROTOCOL = "ringspec-engine/1"
MASK64 = (1 << 64) - 1
SEGMENTS = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"]
GPRS = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]


# --------------------------------------------------------------------------------------------
# The emulator (a toy): replace with yours.

class Unsupported(Exception):
    pass


class ToyCpu:
    def __init__(self, state, profile):
        """`state` is the protocol's state object (the ringspec-state/1 shape)."""
        self.profile = profile
        self.regs = {name: int(value, 16) for name, value in state["regs"].items()}
        self.sregs = json.loads(json.dumps(state["sregs"]))  # kept as JSON: the toy reads few fields
        self.msrs = {name: int(value, 16) for name, value in state["msrs"].items()}
        self.cpu = dict(state.get("cpu") or {})
        self.memory = {}  # page number -> bytearray(4096)
        for region in state["memory"]:
            data = bytes.fromhex(region["bytes"])
            base = int(region["gpa"], 16)
            for i, b in enumerate(data):
                self.page(base + i)[(base + i) & 0xFFF] = b
        self.written = set()  # page numbers written since load

    # -- memory ------------------------------------------------------------------------------
    def page(self, address):
        return self.memory.setdefault(address >> 12, bytearray(4096))

    def read(self, address, size):
        return int.from_bytes(bytes(self.page(address + i)[(address + i) & 0xFFF] for i in range(size)), "little")

    def write(self, address, size, value):
        for i in range(size):
            self.page(address + i)[(address + i) & 0xFFF] = (value >> (8 * i)) & 0xFF
            self.written.add((address + i) >> 12)

    def translate(self, linear):
        """4-level walk; sets the accessed bit in each entry (as ringspec's engines do)."""
        table = int(self.sregs["cr3"], 16) & 0x000F_FFFF_FFFF_F000
        for level, shift in enumerate((39, 30, 21, 12)):
            entry_address = table + ((linear >> shift) & 0x1FF) * 8
            entry = self.read(entry_address, 8)
            if not entry & 1:
                raise Unsupported("a page fault (the toy does not deliver exceptions)")
            if not entry & 0x20:
                self.write(entry_address, 8, entry | 0x20)
            large = level in (1, 2) and entry & 0x80
            if large or level == 3:
                frame_mask = (1 << shift) - 1
                return (entry & 0x000F_FFFF_FFFF_F000 & ~frame_mask) | (linear & frame_mask)
            table = entry & 0x000F_FFFF_FFFF_F000
        raise AssertionError("unreachable")

    def fetch(self, count):
        rip = self.regs["rip"]
        return bytes(self.read(self.translate(rip + i), 1) for i in range(count))

    # -- one step ------------------------------------------------------------------------------
    def step(self):
        rip = self.regs["rip"]
        if self.cpu.get("shutdown"):
            return {"kind": "shutdown", "rip": hex(rip)}
        if self.cpu.get("halted"):
            return {"kind": "halted", "rip": hex(rip)}  # nothing can wake the toy
        if self.cpu.get("pending_irq") is not None or self.cpu.get("pending_nmi") or self.cpu.get("pending_debug_trap"):
            raise Unsupported("events at an instruction boundary")
        code = self.fetch(3)
        insn = self.execute(code)
        return {"kind": "halted" if code[0] == 0xF4 else "retired", "rip": hex(rip),
                "instruction": {"bytes": code[:insn].hex(), "length": insn}}

    def execute(self, code):
        """Executes the instruction at RIP; returns its length."""
        cpl = int(self.sregs["cs"]["selector"], 16) & 3
        rflags = self.regs["rflags"]
        if code[0] == 0x90:                                   # NOP
            self.regs["rip"] += 1
            return 1
        if code[0] == 0xF4 and cpl == 0:                      # HLT
            self.regs["rip"] += 1
            self.cpu["halted"] = True
            return 1
        if code[0] == 0xEB:                                   # JMP rel8
            self.regs["rip"] = (self.regs["rip"] + 2 + (code[1] - 256 if code[1] > 127 else code[1])) & MASK64
            return 2
        if code[0] == 0x48 and code[1] == 0xFF and code[2] & 0xF8 == 0xC0:  # INC r64
            self.inc(GPRS[code[2] & 7])
            self.regs["rip"] += 3
            return 3
        if code[:2] == b"\x0f\x05" and int(self.sregs["efer"], 16) & 1:      # SYSCALL
            self.regs["rcx"] = self.regs["rip"] + 2
            self.regs["r11"] = rflags & ~0x10000
            self.regs["rflags"] = (rflags & ~self.msrs["SFMASK"] & ~0x10000 & 0xFFFF_FFFF) | 2
            star = self.msrs["STAR"] >> 32
            self.sregs["cs"] = flat((star & 0xFFFC), code_segment=True, dpl=0)
            self.sregs["ss"] = flat(((star + 8) & 0xFFFF), code_segment=False, dpl=0)
            self.regs["rip"] = self.msrs["LSTAR"]
            return 2
        if code[:3] == b"\x48\x0f\x07" and cpl == 0 and is_canonical(self.regs["rcx"]):  # SYSRETQ
            star = self.msrs["STAR"] >> 48
            self.regs["rflags"] = (self.regs["r11"] & 0x3C7FD7) | 2
            self.sregs["cs"] = flat(((star + 16) | 3) & 0xFFFF, code_segment=True, dpl=3)
            self.sregs["ss"] = flat(((star + 8) | 3) & 0xFFFF, code_segment=False, dpl=3)
            self.regs["rip"] = self.regs["rcx"]
            return 3
        if code[:3] == b"\x0f\x01\xf8" and cpl == 0:          # SWAPGS
            base = self.sregs["gs"]["base"]
            self.sregs["gs"]["base"] = hex(self.msrs["KERNEL_GS_BASE"])
            self.msrs["KERNEL_GS_BASE"] = int(base, 16)
            self.msrs["GS_BASE"] = int(self.sregs["gs"]["base"], 16)
            self.regs["rip"] += 3
            return 3
        raise Unsupported(f"the toy does not execute {code.hex()} here")

    def inc(self, name):
        old = self.regs[name]
        new = (old + 1) & MASK64
        self.regs[name] = new
        flags = self.regs["rflags"] & ~(0x4 | 0x10 | 0x40 | 0x80 | 0x800)  # CF is kept
        flags |= 0x4 if bin(new & 0xFF).count("1") % 2 == 0 else 0        # PF
        flags |= 0x10 if (old & 0xF) == 0xF else 0                          # AF
        flags |= 0x40 if new == 0 else 0                                    # ZF
        flags |= 0x80 if new >> 63 else 0                                   # SF
        flags |= 0x800 if old == (1 << 63) - 1 else 0                       # OF
        self.regs["rflags"] = flags

    # -- back to the protocol's shape -----------------------------------------------------------
    def state(self, ranges=None):
        pages = sorted(self.memory) if ranges is None else sorted({n for start, end in ranges for n in range(start >> 12, (end + 4095) >> 12)})
        memory = [{"gpa": hex(n << 12), "bytes": self.memory[n].hex()} for n in pages if n in self.memory and any(self.memory[n])]
        return {"regs": {name: hex(value & MASK64) for name, value in self.regs.items()},
                "sregs": self.sregs,
                "msrs": {name: hex(value) for name, value in self.msrs.items()},
                "memory": memory,
                "cpu": self.cpu}


def flat(selector, code_segment, dpl):
    """The fixed flat segment SYSCALL and SYSRET load."""
    return {"selector": hex(selector), "base": "0x0", "limit": "0xffffffff", "type": 11 if code_segment else 3,
            "present": 1, "dpl": dpl, "db": 0 if code_segment else 1, "s": 1, "l": 1 if code_segment else 0,
            "g": 1, "avl": 0, "unusable": 0}


def is_canonical(address):
    top = address >> 47
    return top == 0 or top == (1 << 17) - 1


# --------------------------------------------------------------------------------------------
# The adapter: the protocol loop. This part stays the same for any emulator.

class Engine:
    def __init__(self):
        self.cpu = None

    def hello(self, params):
        if params.get("protocol") != PROTOCOL:
            raise ValueError(f"this engine speaks {PROTOCOL}")
        return {"protocol": PROTOCOL, "name": "python toy 0.1", "profiles": ["intel"],
                "single_step": True, "raise": False, "touched": True, "unobservable": [], "rules": False}

    def load(self, params):
        self.cpu = ToyCpu(params["state"], params["profile"])
        return {}

    def one_step(self):
        try:
            return self.cpu.step()
        except Unsupported as why:
            rip = self.cpu.regs["rip"]
            try:
                code = self.cpu.fetch(3).hex()
            except Unsupported:
                code = ""
            return {"kind": "unsupported", "rip": hex(rip), "bytes": code, "reason": str(why)}

    def step(self, params):
        return {"event": self.one_step()}

    def steps(self, params):
        events = []
        for _ in range(params["n"]):
            event = self.one_step()
            events.append(event)
            if event["kind"] in ("shutdown", "unsupported", "memory-limit", "halted"):
                break
        return {"events": events}

    def run(self, params):
        steps = 0
        while steps < params["max_steps"]:
            if self.cpu.cpu.get("halted"):
                return {"stop": {"reason": "hlt", "steps": steps}}
            event = self.one_step()
            if event["kind"] == "unsupported":
                return {"stop": {"reason": "unsupported", "steps": steps, "event": event}}
            steps += 1
        return {"stop": {"reason": "hlt" if self.cpu.cpu.get("halted") else "limit", "steps": steps}}

    def state(self, params):
        ranges = None if not params or "memory" not in params else [(int(r["start"], 16), int(r["end"], 16)) for r in params["memory"]]
        return {"state": self.cpu.state(ranges)}

    def raise_(self, params):
        raise ValueError("this engine cannot raise events")

    def touched(self, params):
        return {"ranges": [{"start": hex(n << 12), "end": hex((n + 1) << 12)} for n in sorted(self.cpu.written)]}


def main():
    engine = Engine()
    methods = {"hello": engine.hello, "load": engine.load, "step": engine.step, "steps": engine.steps,
               "run": engine.run, "state": engine.state, "raise": engine.raise_, "touched": engine.touched}
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = {"id": request["id"], "result": methods[request["method"]](request.get("params"))}
        except Exception as error:  # the engine refuses this request and goes on
            answer = {"id": request.get("id", 0), "error": {"message": f"{type(error).__name__}: {error}"}}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
