// Addresses as `symbol+offset`, for traces of kernels with a symbol map (an ELF .symtab, a loader
// description's `symbols`, the guest kit's labels).
export type Symbolizer = (address: bigint) => string | undefined;

export const NO_SYMBOLS: Symbolizer = () => undefined;

/** `name` or `name+0x1c` for the closest symbol at or below an address, within `reach` bytes. */
export function symbolizer(symbols: ReadonlyMap<string, bigint>, reach = 0x1000n): Symbolizer {
  if (symbols.size === 0) return NO_SYMBOLS;
  // One name per address: the first in name order, so the choice does not depend on map order.
  const byAddress = new Map<bigint, string>();
  for (const [name, address] of [...symbols].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)))
    if (!byAddress.has(address)) byAddress.set(address, name);
  const sorted = [...byAddress].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return (address) => {
    let lo = 0;
    let hi = sorted.length - 1;
    let found: readonly [bigint, string] | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const entry = sorted[mid]!;
      if (entry[0] <= address) {
        found = entry;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found === undefined || address - found[0] > reach) return undefined;
    return address === found[0] ? found[1] : `${found[1]}+0x${(address - found[0]).toString(16)}`;
  };
}
