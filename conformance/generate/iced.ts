// iced-x86 (synchronous CommonJS wasm) loaded once for ESM callers.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
export const iced = require("iced-x86") as typeof import("iced-x86");
