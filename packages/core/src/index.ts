export * from "./schema.js";
export * from "./names.js";
export * from "./clients.js";
export * from "./rules.js";
export * from "./applier.js";
export * from "./tables.js";
export * from "./ledger.js";
