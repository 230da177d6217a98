// What benchmark suites share: the suite interface, one DynamoDB Local for the whole run, fresh
// tables, medians, the machine description, and peak RSS of a child process.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import {
  CreateTableCommand,
  DeleteTableCommand,
  waitUntilTableExists,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { createTableInput, type LogicalTable } from "@sitelogix/core";
import type { DynamoDbLocal } from "@sitelogix/testkit";

export type OptionValue = string | boolean | undefined;

export interface BenchOption {
  type: "string" | "boolean";
  default: string | boolean;
  /** Value under --quick (a small run that validates the harness). */
  quick?: string | boolean;
  help: string;
}

export interface BenchContext {
  local: DynamoDbLocal;
  /** Progress for the person running the benchmark (stderr). */
  log(line: string): void;
}

export interface BenchSuite {
  name: string;
  description: string;
  /** Its options, given on the command line as --<suite>-<name>. */
  options: Record<string, BenchOption>;
  /** Runs the suite; returns a Markdown section for BENCHMARKS.md and the raw figures. */
  run(context: BenchContext, options: Record<string, OptionValue>): Promise<{ markdown: string; data: unknown }>;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const round = (n: number, digits = 0) => Number(n.toFixed(digits));

/**
 * A new, empty table of the given kind: its schema in the expand phase (legacy GSIs), without the
 * stream. A stream makes every write to DynamoDB Local about ten times slower (measured on this
 * machine), which a stream on AWS does not: with it, every figure would be DynamoDB Local's.
 */
export async function freshTable(
  dynamodb: DynamoDBClient,
  table: LogicalTable,
  name = `bench-${randomBytes(3).toString("hex")}-${table}`,
): Promise<string> {
  await dynamodb.send(new CreateTableCommand(createTableInput(table, name, "expand", false)));
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 60 }, { TableName: name });
  return name;
}

export async function dropTable(dynamodb: DynamoDBClient, name: string): Promise<void> {
  await dynamodb.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
}

export function machine(): Record<string, string> {
  const cpu = cpus();
  return {
    cpu: `${cpu.length} × ${cpu[0]?.model ?? "unknown"}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    // `java -version` answers on stderr.
    java: spawnSync("java", ["-version"], { encoding: "utf8" }).stderr?.split("\n")[0] ?? "unknown",
    load: loadavg()
      .map((l) => l.toFixed(1))
      .join(" "),
  };
}

/**
 * Resident set size of a running process (Linux: VmRSS, and VmHWM: its peak) in MiB; undefined elsewhere or once it
 * exited.
 */
export function rssMiB(pid: number): { current: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
    const current = kib("VmRSS");
    const peak = kib("VmHWM");
    // An exiting process has no memory fields left.
    return Number.isFinite(current) && Number.isFinite(peak)
      ? { current: current / 1024, peak: peak / 1024 }
      : undefined;
  } catch {
    return undefined;
  }
}
