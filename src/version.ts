import packageJson from "../package.json";

/** Steward's version, from package.json. */
export const STEWARD_VERSION: string = packageJson.version;
