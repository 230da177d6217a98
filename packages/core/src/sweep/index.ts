// The sweep: a one-time, resumable, throttled backfill of old items, by segment workers that
// claim parallel-scan segments through the ledger (segment.ts), in one process (run.ts), several
// worker processes (worker.ts) or the state machine's Lambdas, under one budget (budget.ts).
export * from "./budget.js";
export * from "./items.js";
export * from "./leases.js";
export * from "./plan.js";
export * from "./progress.js";
export * from "./run.js";
export * from "./segment.js";
export * from "./tables.js";
export * from "./worker.js";
