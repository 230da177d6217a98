// Pre-migration backups (the plan's checklist): an on-demand backup per table, awaited until
// AVAILABLE and recorded in the ledger, so that every later phase has a restore point on record.
import { sleep } from "./sleep.js";
import { CreateBackupCommand, DescribeBackupCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { BackupRecord, Ledger } from "./ledger/index.js";
import type { TableNames } from "./names.js";
import type { SiteLogixTable } from "./schema.js";
import { isErrorNamed } from "./errors.js";

export class BackupsUnsupportedError extends Error {
  constructor(endpoint: string) {
    super(
      `this endpoint (${endpoint}) does not support on-demand backups (DynamoDB Local has no backup API); ` +
        "run `backup` against AWS",
    );
    this.name = "BackupsUnsupportedError";
  }
}

/** `<table>-<phase>-<yyyymmddThhmmssZ>`: names allow [A-Za-z0-9_.-], 3 to 255 characters. */
export function backupName(tableName: string, phase: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${tableName}-${phase}-${stamp}`.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 255);
}

export interface BackupOptions {
  dynamodb: DynamoDBClient;
  ledger: Ledger;
  names: TableNames;
  tables: SiteLogixTable[];
  /** The migration phase of a table, for the backup's name. */
  phaseOf: (table: SiteLogixTable) => Promise<string>;
  /** How long to wait for AVAILABLE before calling the backup failed. */
  maxWaitMs?: number;
  pollMs?: number;
  onProgress?: (line: string) => void;
}

const isUnsupported = (err: unknown) => isErrorNamed(err, "UnknownOperationException", "UnrecognizedClientException");

async function waitUntilAvailable(
  dynamodb: DynamoDBClient,
  backupArn: string,
  maxWaitMs: number,
  pollMs: number,
): Promise<{ status: string; sizeBytes?: number }> {
  const deadline = Date.now() + maxWaitMs;
  for (let delay = pollMs; ; delay = Math.min(delay * 2, 30_000)) {
    const details = (await dynamodb.send(new DescribeBackupCommand({ BackupArn: backupArn }))).BackupDescription
      ?.BackupDetails;
    const status = details?.BackupStatus ?? "UNKNOWN";
    if (status !== "CREATING")
      return { status, ...(details?.BackupSizeBytes !== undefined ? { sizeBytes: details.BackupSizeBytes } : {}) };
    if (Date.now() + delay > deadline) return { status: "TIMED_OUT" };
    await sleep(delay);
  }
}

/**
 * Backs up each table in turn and records every attempt in the ledger. A backup counts as taken only
 * when DynamoDB reports it AVAILABLE; anything else is recorded and returned as failed.
 */
export async function backupTables(options: BackupOptions): Promise<BackupRecord[]> {
  const results: BackupRecord[] = [];
  for (const table of options.tables) {
    const tableName = options.names[table];
    const createdAt = new Date();
    const name = backupName(tableName, await options.phaseOf(table), createdAt);
    let record: BackupRecord;
    try {
      const details = (await options.dynamodb.send(new CreateBackupCommand({ TableName: tableName, BackupName: name })))
        .BackupDetails;
      if (!details?.BackupArn) throw new Error(`CreateBackup for ${tableName} returned no backup ARN`);
      options.onProgress?.(`${tableName}: backup ${name} started, waiting until AVAILABLE`);
      const outcome = await waitUntilAvailable(
        options.dynamodb,
        details.BackupArn,
        options.maxWaitMs ?? 3_600_000,
        options.pollMs ?? 2_000,
      );
      record = {
        table,
        tableName,
        backupName: name,
        backupArn: details.BackupArn,
        createdAt: createdAt.toISOString(),
        status: outcome.status === "AVAILABLE" ? "AVAILABLE" : "FAILED",
        ...(outcome.status !== "AVAILABLE" ? { error: `backup ended ${outcome.status}` } : {}),
        ...(outcome.sizeBytes !== undefined ? { sizeBytes: outcome.sizeBytes } : {}),
      };
    } catch (err) {
      if (isUnsupported(err)) {
        throw new BackupsUnsupportedError(
          process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL ?? "default",
        );
      }
      record = {
        table,
        tableName,
        backupName: name,
        createdAt: createdAt.toISOString(),
        status: "FAILED",
        error: (err as Error).message,
      };
    }
    await options.ledger.recordBackup(record);
    const arn = record.backupArn ? ` ${record.backupArn}` : "";
    const error = record.error ? ` (${record.error})` : "";
    options.onProgress?.(`${tableName}: ${record.status}${arn}${error}`);
    results.push(record);
  }
  return results;
}
