// Shared test fixtures: isolated table sets on the run's DynamoDB Local.
import { randomBytes } from "node:crypto";
import { DeleteTableCommand, DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-dynamodb-streams";
import {
  compareSequenceNumbers,
  createClients,
  decodeRecord,
  defaultTableNames,
  destroyClients,
  ensureTables,
  toLambdaRecord,
  type Clients,
  type DecodedRecord,
  type SchemaName,
  type TableNames,
} from "@sitelogix/core";

/** A table-name prefix unique to one suite, so suites never see each other's data. */
export function uniquePrefix(): string {
  return `t${randomBytes(4).toString("hex")}-`;
}

export interface TestTables {
  prefix: string;
  names: TableNames;
  clients: Clients;
  /** Deletes the tables and closes the clients. */
  dispose(): Promise<void>;
}

export async function createTestTables(schema: SchemaName = "legacy"): Promise<TestTables> {
  const prefix = uniquePrefix();
  const names = defaultTableNames(prefix);
  const clients = createClients();
  const created = await ensureTables(clients.dynamodb, names, schema);
  return {
    prefix,
    names,
    clients,
    async dispose() {
      await Promise.all(created.map((t) => clients.dynamodb.send(new DeleteTableCommand({ TableName: t.name })).catch(() => undefined)));
      destroyClients(clients);
    },
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const CLI = new URL("../packages/cli/bin/sitelogix-migrate.js", import.meta.url).pathname;

/** Runs `sitelogix-migrate` as an operator would, against the run's DynamoDB Local. */
export async function runCli(args: string[], env: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<CliRun> {
  const { spawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every record currently in a table's stream, decoded, in stream order (reads each shard to its end). */
export async function readStreamRecords(clients: Clients, tableName: string): Promise<DecodedRecord[]> {
  const streamArn = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }))).Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`${tableName} has no stream`);
  const records: DecodedRecord[] = [];
  const shards = (await clients.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription?.Shards ?? [];
  for (const shard of shards) {
    let iterator = (await clients.streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
    while (iterator) {
      const out = await clients.streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      records.push(...(out.Records ?? []).map((r) => decodeRecord(toLambdaRecord(r, streamArn))));
      if (!out.Records?.length) break;
      iterator = out.NextShardIterator;
    }
  }
  return records.sort((a, b) => compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber));
}
