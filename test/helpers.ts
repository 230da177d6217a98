// Shared test fixtures: isolated table sets on the run's DynamoDB Local.
import { randomBytes } from "node:crypto";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { createClients, defaultTableNames, destroyClients, ensureTables, type Clients, type SchemaName, type TableNames } from "@sitelogix/core";

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
export async function startCli(args: string[], env: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<StartedCli> {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
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
export async function runCli(args: string[], env: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<CliRun> {
  return (await startCli(args, env, options)).done;
}
