/** Vendor behaviour the engines model: `intel` (the default, what the vectors assume) or `amd`. */
export type ProfileName = "intel" | "amd";
export const PROFILE_NAMES: readonly ProfileName[] = ["intel", "amd"];
