// spec/format: the state types, JSON schemas and conversions. The only part of spec/ that other
// engines (impl/, adapters) may import.
export * from "./hex.ts";
export * from "./schema.ts";
export * from "./state.ts";
export * from "./load.ts";
export * from "./profile.ts";
export * from "./scope.ts";
export * from "./engine.ts";
