// Shared test fixtures: isolated table sets on the run's DynamoDB Local.
import { randomBytes } from "node:crypto";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import {
  createClients,
  defaultTableNames,
  destroyClients,
  ensureTables,
  type Clients,
  type Item,
  type SchemaName,
  type SiteLogixTable,
  type TableNames,
} from "@sitelogix/core";
import type { AppWrite } from "../packages/cli/src/sample-data.js";

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
      await Promise.all(
        created.map((t) => clients.dynamodb.send(new DeleteTableCommand({ TableName: t.name })).catch(() => undefined)),
      );
      destroyClients(clients);
    },
  };
}

export interface CliRun {
  code: number | null;
  /** The signal that ended the process, if one did. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const CLI = new URL("../packages/cli/bin/sitelogix-migrate.js", import.meta.url).pathname;

/** A running `sitelogix-migrate`: signal or kill `child`; `done` resolves when it exits. */
export interface StartedCli {
  child: import("node:child_process").ChildProcess;
  done: Promise<CliRun>;
  /** stderr so far. */
  stderr(): string;
}

/** Starts `sitelogix-migrate` against the run's DynamoDB Local without waiting for it. */
export async function startCli(
  args: string[],
  env: Record<string, string> = {},
  options: { timeoutMs?: number } = {},
): Promise<StartedCli> {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done, stderr: () => stderr };
}

/** Runs `sitelogix-migrate` as an operator would, against the run's DynamoDB Local. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  options: { timeoutMs?: number } = {},
): Promise<CliRun> {
  return (await startCli(args, env, options)).done;
}

/**
 * Per item still present after the traffic, the value of each attribute the application wrote last
 * (ordered by the item's version, which its optimistic locking serializes). A later full put or
 * insert that lacked the attribute ends what the application said about it.
 */
export function lastApplicationWrites(
  journal: readonly AppWrite[],
): Map<
  string,
  { table: SiteLogixTable; key: { PK: string; SK: string }; values: Item; versions: Record<string, number> }
> {
  const id = (w: AppWrite) => `${w.table}|${w.key.PK}|${w.key.SK}`;
  const deleted = new Set(journal.filter((w) => w.op === "delete").map(id));
  const byItem = new Map<string, AppWrite[]>();
  for (const w of journal) if (!deleted.has(id(w))) byItem.set(id(w), [...(byItem.get(id(w)) ?? []), w]);
  const result = new Map<
    string,
    { table: SiteLogixTable; key: { PK: string; SK: string }; values: Item; versions: Record<string, number> }
  >();
  for (const [itemId, writes] of byItem) {
    writes.sort((a, b) => (a.version ?? 0) - (b.version ?? 0));
    const values: Item = {};
    /** The item's version after the write that set each attribute last. */
    const versions: Record<string, number> = {};
    for (const w of writes) {
      if (w.op !== "update") for (const k of Object.keys(values)) delete values[k];
      Object.assign(values, w.attributes ?? {}, w.version !== undefined ? { version: w.version } : {});
      for (const k of Object.keys(w.attributes ?? {})) versions[k] = w.version ?? 0;
    }
    result.set(itemId, { table: writes[0]!.table, key: writes[0]!.key, values, versions });
  }
  return result;
}
