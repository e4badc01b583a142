// The engines that drive an emulator in another process, as registry entries (engines/registry.ts):
// QEMU (TCG), Bochs, and any GDB remote-protocol stub. They are AsyncEngines only.
import type { AsyncEngine, EngineCapabilities } from "../contract/engine.ts";
import { BochsEngine, BOCHS_UNOBSERVABLE } from "./bochs/engine.ts";
import { GdbEngine, gdbUnobservable, parseGdbTarget } from "./gdb/engine.ts";
import { QemuEngine, QEMU_UNOBSERVABLE } from "./qemu/engine.ts";
import { EngineError } from "./host/errors.ts";

export interface EmulatorOptions {
  /** The QEMU program (`--qemu PATH`). */
  readonly qemu?: string;
  /** QEMU's `-cpu` (`--qemu-cpu MODEL`); default `max` with the profile's vendor. */
  readonly qemuCpu?: string;
  /** The Bochs program (`--bochs PATH`). */
  readonly bochs?: string;
  /** The GDB stub (`--gdb HOST:PORT` or a unix socket path). */
  readonly gdb?: string;
}

/** The registry's view of an engine in another process (EngineEntry without `create`). */
export interface EmulatorEntry {
  readonly name: string;
  readonly description: string;
  readonly capabilities: EngineCapabilities;
  readonly open: (options?: { readonly emulator?: EmulatorOptions }) => Promise<AsyncEngine>;
}

const COMMON = { singleStep: false, raise: false, touched: false } as const;

export const EMULATOR_ENGINES: readonly EmulatorEntry[] = [
  {
    name: "qemu",
    description: "QEMU TCG (qemu-system-x86_64; --qemu PATH, --qemu-cpu MODEL), state installed through SMM",
    capabilities: { name: "qemu", profiles: ["intel", "amd"], ...COMMON, unobservable: QEMU_UNOBSERVABLE },
    open: async (options = {}) =>
      new QemuEngine({
        ...(options.emulator?.qemu === undefined ? {} : { program: options.emulator.qemu }),
        ...(options.emulator?.qemuCpu === undefined ? {} : { cpu: options.emulator.qemuCpu }),
      }),
  },
  {
    name: "bochs",
    description: "Bochs 2.7 (bochs; --bochs PATH), driven through its internal debugger",
    capabilities: { name: "bochs", profiles: ["intel", "amd"], ...COMMON, unobservable: BOCHS_UNOBSERVABLE },
    open: async (options = {}) => new BochsEngine(options.emulator?.bochs === undefined ? {} : { program: options.emulator.bochs }),
  },
  {
    name: "gdb",
    description: "any GDB remote-protocol stub (--gdb HOST:PORT): what its target description exposes",
    capabilities: { name: "gdb", profiles: ["intel", "amd"], ...COMMON, unobservable: gdbUnobservable(new Set(), false) },
    open: async (options = {}) => {
      const text = options.emulator?.gdb;
      if (text === undefined) throw new EngineError("usage", "--engine gdb needs --gdb HOST:PORT");
      const target = parseGdbTarget(text);
      if (typeof target === "string") throw new EngineError("usage", `--gdb: ${target}`);
      return new GdbEngine({ target });
    },
  },
];
