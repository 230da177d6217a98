// The migration phase each stage is deployed at. Moving a stage on is a reviewed change of one line
// here, then `npx sst deploy --stage <stage>` (README: "Operator runbook"). The deploy checks the
// phase's preconditions against the live tables and the ledger and refuses when they do not hold.
//
//   expand   streams, PITR, the new tables, the normalizer and audit-logger subscriptions
//   index    the target GSIs, one per table, each only once its index gate is green
//   contract drops personnel's GSI2-ProjectIndex (only once the application no longer queries it)
//
// `audit` (optional): retentionYears (default 7: entries' TTL and the digests' S3 Object Lock),
// digestSchedule (default "rate(1 hour)"), digestLockDays (stages that must be torn down; not prod).
import type { MigrationConfig } from "./stacks/config";

export default {
  stages: {
    // Before the first prod deploy, add who gets the alarms and phase events — the deploy refuses
    // without it: alarms: { email: ["<on-call address>"] } or
    // alarms: { topicArn: "<existing SNS topic in us-east-1>" }.
    // sweep: the distributed sweep (`sweep --distributed`, docs/sweep.md): segments ≥ 4× maxConcurrency.
    prod: {
      phase: "expand",
      existingTables: "adopt",
      sweep: { segments: 64, maxConcurrency: 16, sliceMinutes: 10, toleratedFailurePercentage: 0 },
    },
  },
  // Dev and rehearsal stages lock their digests for one day only: a digest cannot be deleted by
  // anyone before its lock expires (COMPLIANCE mode), so `sst remove` succeeds a day after the last one.
  otherStages: {
    phase: "expand",
    sweep: { segments: 16, maxConcurrency: 4, sliceMinutes: 10, toleratedFailurePercentage: 0 },
    audit: { digestLockDays: 1 },
  },
} satisfies MigrationConfig;
