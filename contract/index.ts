// contract/: what the engines share — state types, JSON schemas and conversion, the vendor profiles,
// the Engine and AsyncEngine interfaces with their events and stops, and the one state comparison.
// spec/ and impl/ import only this folder of each other's world.
export * from "./hex.ts";
export * from "./schema.ts";
export * from "./state.ts";
export * from "./load.ts";
export * from "./profile.ts";
export * from "./cpuid.ts";
export * from "./scope.ts";
export * from "./engine.ts";
export * from "./compare.ts";
export * from "./async.ts";
