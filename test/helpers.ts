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
