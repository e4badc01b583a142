// Addresses as `symbol+offset`, for traces and reports of kernels with a symbol map.
export class SymbolTable {
  private readonly sorted: readonly (readonly [bigint, string])[];

  constructor(symbols: ReadonlyMap<string, bigint>) {
    // The exception stubs are one label per vector: name them as the table they form.
    this.sorted = [...symbols].filter(([name]) => !/^stub_[0-9]+$/.test(name) || name === "stub_0").map(([name, a]) => [a, name === "stub_0" ? "exception_stubs" : name] as const).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  }

  /** `name` or `name+0x1c` for the closest symbol at or below `address`, within `reach` bytes. */
  describe(address: bigint, reach = 0x1000n): string | undefined {
    let lo = 0;
    let hi = this.sorted.length - 1;
    let found: readonly [bigint, string] | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const entry = this.sorted[mid]!;
      if (entry[0] <= address) {
        found = entry;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found === undefined || address - found[0] > reach) return undefined;
    return address === found[0] ? found[1] : `${found[1]}+0x${(address - found[0]).toString(16)}`;
  }
}
