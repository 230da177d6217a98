// Rollback of data (the seed's "Restore from Backup"): a table restored into a NEW table, from PITR at
// a time or from an on-demand backup, awaited until ACTIVE and recorded. The live table is never
// replaced: the operator copies back what was damaged (the audit trail says which items).
import {
  DescribeBackupCommand,
  DescribeContinuousBackupsCommand,
  RestoreTableFromBackupCommand,
  RestoreTableToPointInTimeCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { isErrorNamed } from "../errors.js";
import type { Ledger } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { describeTable } from "../tables.js";
import { sleep } from "../sleep.js";
import { RollbackRefusedError, type RollbackResult } from "./rollback-index.js";
import { recordRollback, type RollbackRecord } from "./rollback-record.js";

export interface RestorePlan {
  table: SiteLogixTable;
  tableName: string;
  targetTableName: string;
  /** Exactly one: a PITR time (ISO) or a backup ARN. */
  to?: string;
  backupArn?: string;
  /** PITR: the window the time was checked against. */
  window?: { earliest: string; latest: string };
}

/** `<table>-restored-<yyyymmddThhmmssZ>` (table names: [A-Za-z0-9_.-], at most 255). */
export function restoredTableName(tableName: string, at: Date): string {
  return `${tableName}-restored-${at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}`.slice(0, 255);
}

const unsupported = (err: unknown, what: string) =>
  isErrorNamed(err, "UnknownOperationException", "UnrecognizedClientException")
    ? new RollbackRefusedError(
        `this endpoint does not support ${what} (DynamoDB Local has none): run the restore against AWS`,
      )
    : err;

/** What `rollback restore` would do; throws RollbackRefusedError saying why it cannot. */
export async function planRestore(
  dynamodb: DynamoDBClient,
  input: {
    table: SiteLogixTable;
    tableName: string;
    to?: string;
    backupArn?: string;
    targetTableName?: string;
    now?: Date;
  },
): Promise<RestorePlan> {
  const { table, tableName } = input;
  if ((input.to === undefined) === (input.backupArn === undefined))
    throw new RollbackRefusedError("give exactly one of --to ISO and --backup ARN");
  if (!(await describeTable(dynamodb, tableName))) throw new RollbackRefusedError(`table ${tableName} not found`);
  const targetTableName = input.targetTableName ?? restoredTableName(tableName, input.now ?? new Date());
  if (await describeTable(dynamodb, targetTableName))
    throw new RollbackRefusedError(`table ${targetTableName} already exists: choose another --target`);
  const plan: RestorePlan = { table, tableName, targetTableName };

  if (input.to !== undefined) {
    const ms = Date.parse(input.to);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(input.to) || Number.isNaN(ms))
      throw new RollbackRefusedError(`--to must be an ISO time in UTC (e.g. 2025-11-20T09:00:00Z); got "${input.to}"`);
    const pitr = await dynamodb
      .send(new DescribeContinuousBackupsCommand({ TableName: tableName }))
      .then((out) => out.ContinuousBackupsDescription?.PointInTimeRecoveryDescription)
      .catch((err) => Promise.reject(unsupported(err, "point-in-time recovery")));
    if (
      pitr?.PointInTimeRecoveryStatus !== "ENABLED" ||
      !pitr.EarliestRestorableDateTime ||
      !pitr.LatestRestorableDateTime
    ) {
      throw new RollbackRefusedError(
        `point-in-time recovery is not enabled on ${tableName}: ` +
          "restore from a backup (--backup ARN; `status` shows the latest)",
      );
    }
    const window = {
      earliest: pitr.EarliestRestorableDateTime.toISOString(),
      latest: pitr.LatestRestorableDateTime.toISOString(),
    };
    if (ms < pitr.EarliestRestorableDateTime.getTime() || ms > pitr.LatestRestorableDateTime.getTime()) {
      throw new RollbackRefusedError(
        `${input.to} is outside ${tableName}'s restorable window (${window.earliest} to ${window.latest})`,
      );
    }
    return { ...plan, to: new Date(ms).toISOString(), window };
  }

  const details = await dynamodb
    .send(new DescribeBackupCommand({ BackupArn: input.backupArn }))
    .then((out) => out.BackupDescription)
    .catch((err) =>
      Promise.reject(
        isErrorNamed(err, "BackupNotFoundException")
          ? new RollbackRefusedError(`backup ${input.backupArn} not found`)
          : unsupported(err, "backups"),
      ),
    );
  const source = details?.SourceTableDetails?.TableName;
  if (source !== tableName)
    throw new RollbackRefusedError(`backup ${input.backupArn} is of table ${source ?? "unknown"}, not ${tableName}`);
  const status = details?.BackupDetails?.BackupStatus;
  if (status !== "AVAILABLE")
    throw new RollbackRefusedError(`backup ${input.backupArn} is ${status ?? "in an unknown state"}, not AVAILABLE`);
  return { ...plan, backupArn: input.backupArn! };
}

/** Starts the restore and waits until the new table is ACTIVE (restores of large tables take hours). */
export async function restoreTable(
  dynamodb: DynamoDBClient,
  ledger: Ledger,
  plan: RestorePlan,
  options: { maxWaitMs?: number; pollMs?: number; onProgress?: (line: string) => void } = {},
): Promise<RollbackResult> {
  const record: RollbackRecord = {
    table: plan.table,
    tableName: plan.tableName,
    kind: "restore",
    targetTableName: plan.targetTableName,
    ...(plan.to ? { restoredTo: plan.to } : {}),
    ...(plan.backupArn ? { backupArn: plan.backupArn } : {}),
    startedAt: new Date().toISOString(),
    status: "started",
  };
  if (plan.to) {
    await dynamodb.send(
      new RestoreTableToPointInTimeCommand({
        SourceTableName: plan.tableName,
        TargetTableName: plan.targetTableName,
        RestoreDateTime: new Date(plan.to),
      }),
    );
  } else {
    await dynamodb.send(
      new RestoreTableFromBackupCommand({ TargetTableName: plan.targetTableName, BackupArn: plan.backupArn }),
    );
  }
  await recordRollback(ledger, record);
  options.onProgress?.(`${plan.targetTableName}: restore started, waiting until ACTIVE`);
  const deadline = Date.now() + (options.maxWaitMs ?? 3_600_000);
  for (let delay = options.pollMs ?? 5000; ; delay = Math.min(delay * 2, 60_000)) {
    const described = await describeTable(dynamodb, plan.targetTableName);
    if (described?.TableStatus === "ACTIVE" && described.RestoreSummary?.RestoreInProgress !== true) {
      record.status = "done";
      break;
    }
    if (Date.now() + delay > deadline) {
      record.status = "timed-out";
      break;
    }
    await sleep(delay);
  }
  record.finishedAt = new Date().toISOString();
  const ledgerProblem = await recordRollback(ledger, record);
  return { record, ...(ledgerProblem ? { ledgerProblem } : {}) };
}

/** What the operator does with the restored table. */
export function restoreFollowUp(plan: RestorePlan, status: RollbackRecord["status"]): string[] {
  const describe = `aws dynamodb describe-table --table-name ${plan.targetTableName}`;
  const query = `sitelogix-migrate audit query --table ${plan.table}${plan.to ? ` --from ${plan.to}` : ""}`;
  return [
    ...(status === "timed-out" ? [`the restore goes on in DynamoDB: follow it with \`${describe}\``] : []),
    `${plan.targetTableName} has the keys and indexes of ${plan.tableName} ` +
      "but no stream, PITR, TTL, auto scaling, tags or alarms, and SST does not manage it",
    `find what to repair: \`${query}\` lists every change since; ` +
      "copy back the damaged items rather than switching the application to the restored table",
    `delete it when done: \`aws dynamodb delete-table --table-name ${plan.targetTableName}\``,
  ];
}
