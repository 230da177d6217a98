// The migration phases (expand, index, contract) and the rollback operations, one file each.
export * from "./build-indexes.js";
export * from "./contract.js";
export * from "./index-gate.js";
export * from "./expand.js";
export * from "./legacy.js";
export * from "./live-tables.js";
export * from "./phase.js";
export * from "./plan.js";
export * from "./restore.js";
export * from "./rollback-index.js";
export * from "./rollback-record.js";
