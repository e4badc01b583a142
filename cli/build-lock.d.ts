// The types of cli/build-lock.js (plain JavaScript, as bin.js must load before any compiler), for
// its tests.
/** See cli/build-lock.js. */
export function buildOnce<T>(how: {
  lock: string;
  name: string;
  built: () => T | undefined;
  build: () => Promise<T>;
  log: (message: string) => void;
  waitMs?: number;
  pollMs?: number;
}): Promise<T>;
