// Shared fixtures of the rehearsal, the tests and the benchmarks: the SiteLogix sample dataset and
// simulated application, DynamoDB Local, isolated table sets, the CLI runner, stream and sweep helpers.
export * from "./application-writes.js";
export * from "./audit-entries.js";
export * from "./cli-runner.js";
export * from "./dynamodb-local.js";
export * from "./java.js";
export * from "./sample-data.js";
export * from "./sns-recorder.js";
export * from "./stream-source.js";
export * from "./streams.js";
export * from "./sweep.js";
export * from "./tables.js";
