// The ledger: the migration's state in one DynamoDB table (record keys in records.ts).
export * from "./ledger.js";
export * from "./records.js";
export * from "./stream.js";
export type { IndexGateDecision } from "../phases/index-gate.js";
