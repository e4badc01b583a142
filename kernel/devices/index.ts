// kernel/devices: the console, exit port and timer of docs/devices.md.
export * from "./model.ts";
export { ExternalDevices } from "./external.ts";
