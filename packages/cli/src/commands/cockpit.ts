// The operator's cockpit: where the migration stands, backups before it starts, and what it will cost.
import { readFileSync } from "node:fs";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { Command } from "commander";
import { integerAtLeast, positiveInt } from "../args.js";
import {
  backupTables,
  BackupsUnsupportedError,
  createClients,
  destroyClients,
  capacityFromEstimate,
  type CapacityPlan,
  estimate,
  Ledger,
  migrationStatus,
  resolveTableNames,
  SITELOGIX_TABLES,
  TABLES,
  tableStatus,
  writeRateFromCloudWatch,
  type Estimate,
  type MigrationStatus,
  type TableStatus,
  type Pricing,
} from "@sitelogix/core";
import { selectTables, tableOption } from "../options.js";
import { CliError, printJson, say } from "../output.js";
import { executionLine, executionStates } from "./sweep-distributed.js";

const DEFAULT_PRICING = new URL("../../../core/pricing.json", import.meta.url);
const EXISTING_TABLES = SITELOGIX_TABLES.filter((t) => TABLES[t].existing);

async function withClients<T>(
  work: (clients: ReturnType<typeof createClients>, ledger: Ledger) => Promise<T>,
): Promise<T> {
  const clients = createClients();
  try {
    return await work(clients, new Ledger(clients.doc, resolveTableNames().ledger));
  } finally {
    destroyClients(clients);
  }
}

/** The last sweep: its run, and while it runs its segments, workers, rates against the budget and ETA. */
function sweepLines(t: TableStatus): string[] {
  const s = t.lastSweep;
  if (!s) return ["  last sweep: none"];
  const ended = s.finishedAt
    ? `, finished ${s.finishedAt}`
    : s.status !== "finished"
      ? " (resumable with --resume)"
      : "";
  const lines = [`  last sweep: ${s.status}, started ${s.startedAt}${ended}`];
  const p = t.sweepProgress;
  if (!p) return lines;
  const budget = p.maxWcu !== undefined ? `${p.maxWcu} WCU/s budget` : "no WCU cap";
  const eta = p.etaSeconds !== undefined ? `, ETA ${Math.ceil(p.etaSeconds / 60)} min` : "";
  lines.push(
    `    segments ${p.segmentsDone}/${p.totalSegments} done, ${p.activeWorkers} active workers, ` +
      `${p.itemsPerSecond} items/s, ${p.wcuPerSecond} WCU/s of ${budget}` +
      `${p.concurrency !== undefined ? `, concurrency ${p.concurrency}` : ""}${eta}`,
  );
  for (const f of p.failedSegments) lines.push(`    failed segment ${f.segment} at ${f.failedAt}: ${f.error}`);
  return lines;
}

function renderStatus(status: MigrationStatus, executions: Awaited<ReturnType<typeof executionStates>>): string {
  const lines: string[] = [];
  if (status.ledgerError) lines.push(`ledger: unreadable (${status.ledgerError})`, "");
  for (const t of status.tables) {
    lines.push(`${t.tableName} [${t.table}]  phase: ${t.phase}`);
    if (t.error) {
      lines.push(`  error: ${t.error}`, "");
      continue;
    }
    if (!t.exists) {
      lines.push("  does not exist", "");
      continue;
    }
    lines.push(
      `  table ${t.tableStatus}, ~${t.itemCount ?? "?"} items, stream ${t.stream}, PITR ${t.pitr}, ` +
        `deletion protection ${t.deletionProtection ? "on" : "off"}`,
    );
    for (const g of t.gsis) {
      const building =
        g.state === "CREATING"
          ? ` (${g.progress !== undefined ? `${g.progress}%` : g.backfilling ? "backfilling" : "building"})`
          : "";
      lines.push(`  GSI ${g.name}: ${g.state}${building}${g.role === "target" ? "" : ` [${g.role}]`}`);
    }
    for (const name of t.missingGsis) lines.push(`  GSI ${name}: missing (target)`);
    lines.push(`  normalizer: ${t.normalizerLiveAt ? `live since ${t.normalizerLiveAt}` : "not live"}`);
    lines.push(...sweepLines(t));
    if (executions[t.table]) lines.push(executionLine(executions[t.table]!));
    const g = t.lastGate;
    const disagreements = g?.disagreements ? `, ${g.disagreements} disagreements` : "";
    lines.push(
      g
        ? `  last gate: ${g.green ? "green" : "red"} at ${g.at} ` +
            `(${g.gaps} gaps, ${g.violations} violations${disagreements})`
        : "  last gate: none",
    );
    lines.push(
      `  latest backup: ${t.latestBackup ? `${t.latestBackup.backupArn} (${t.latestBackup.createdAt})` : "none"}`,
      "",
    );
  }
  lines.push(`next: ${status.next.action}`, `  why: ${status.next.why}`);
  return lines.join("\n");
}

function renderEstimate(e: Estimate, capacity?: Record<string, CapacityPlan>): string {
  const money = (x: number) => `$${x.toFixed(2)}`;
  const lines = [`prices: ${e.pricing.region}, ${e.pricing.asOf} (configuration; --pricing FILE to change)`, ""];
  for (const t of e.tables) {
    lines.push(
      `${t.tableName}: ~${t.itemCount} items, avg ${t.avgItemBytes} B; sample ${t.sample.items}: ` +
        `${t.sample.needsWork} need work, ${t.sample.violations} violations`,
      `  sweep: ~${t.needsWork} items to write, ${t.sweep.writeUnits} WRU, ${t.sweep.readUnits} RRU; ` +
        `verify: ${t.verify.readUnits} RRU`,
      t.perDay
        ? `  per day at ${t.writeRate.writesPerDay} writes (${t.writeRate.source}): ` +
            `normalizer ${t.perDay.normalizerWriteUnits} WRU, audit ${t.perDay.auditEntries} entries of ` +
            `~${t.auditEntryBytes} B = ${t.perDay.auditWriteUnits} WRU`
        : `  per day: unknown (${t.writeRate.note ?? "no write rate"})`,
    );
    const c = capacity?.[t.table];
    if (c)
      lines.push(
        `  sweep at ${c.effectiveWcu} WCU/s${c.limitedBy === "quota" ? " (the table's quota)" : ""}: ~${c.hours} h, ` +
          (c.distributed
            ? `${c.workers} workers: sweep --distributed with ${c.segments} segments`
            : "one process (sitelogix-migrate sweep)") +
          `, ${money(c.cost.total)} on-demand`,
      );
  }
  lines.push("", "one-time            on-demand  provisioned");
  for (const l of e.oneTime)
    lines.push(`  ${l.item.padEnd(18)}${money(l.onDemand).padStart(9)}  ${money(l.provisioned).padStart(11)}`);
  if (e.monthly && e.monthlyTotal) {
    lines.push("per month");
    for (const l of e.monthly)
      lines.push(`  ${l.item.padEnd(30)}${money(l.onDemand).padStart(9)}  ${money(l.provisioned).padStart(11)}`);
    lines.push(
      `  ${"total".padEnd(30)}${money(e.monthlyTotal.onDemand).padStart(9)}  ` +
        money(e.monthlyTotal.provisioned).padStart(11),
    );
    lines.push(
      "",
      `budget ${money(e.budget.perMonth)}/month: ${e.budget.withinOnDemand ? "within" : "OVER"} on-demand; ` +
        `${e.budget.dominant} dominate${e.budget.dominant?.endsWith("s") ? "" : "s"} the monthly cost`,
    );
  } else {
    lines.push("per month: unknown without a write rate (pass --writes-per-day N)");
  }
  return lines.join("\n");
}

export function registerCockpit(program: Command): void {
  program
    .command("status")
    .description(
      "one view of the migration per table: existence, stream, PITR, deletion protection, GSIs against the " +
        "target, item count, phase, last sweep (segments done, active workers, items/s, WCU/s against the " +
        "budget, ETA, failed segments), last gate, latest backup; then the next step and why",
    )
    .addOption(tableOption())
    .option("--json", "print the view as JSON on stdout")
    .action(async (opts: { table?: string[]; json?: boolean }) => {
      const names = resolveTableNames();
      const status = await withClients(({ dynamodb }, ledger) =>
        migrationStatus(dynamodb, ledger, names, selectTables(opts.table, names)),
      );
      const executions = await executionStates(status.tables);
      if (opts.json)
        printJson({ ...status, tables: status.tables.map((t) => ({ ...t, execution: executions[t.table] })) });
      else process.stdout.write(`${renderStatus(status, executions)}\n`);
    });

  program
    .command("backup")
    .description(
      "take an on-demand backup of each table (named <table>-<phase>-<time>), wait until AVAILABLE and " +
        "record its ARN in the ledger; exit 1 unless every backup completed",
    )
    .addOption(tableOption("tables to back up (default: the four existing tables)"))
    .option("--max-wait <minutes>", "how long to wait for each backup to become AVAILABLE", positiveInt, 60)
    .option("--json", "print the results as JSON on stdout")
    .action(async (opts: { table?: string[]; maxWait: number; json?: boolean }) => {
      const names = resolveTableNames();
      const tables = selectTables(opts.table, names, EXISTING_TABLES);
      const results = await withClients(async ({ dynamodb }, ledger) => {
        try {
          return await backupTables({
            dynamodb,
            ledger,
            names,
            tables,
            maxWaitMs: opts.maxWait * 60_000,
            phaseOf: async (table) => (await tableStatus(dynamodb, ledger, names, table)).phase,
            onProgress: say,
          });
        } catch (err) {
          if (err instanceof BackupsUnsupportedError) throw new CliError(err.message);
          throw err;
        }
      });
      if (opts.json) printJson({ backups: results });
      const failed = results.filter((r) => r.status !== "AVAILABLE");
      if (failed.length > 0)
        throw new CliError(
          `${failed.length} of ${results.length} backups did not complete: ` +
            failed.map((f) => `${f.tableName} (${f.error})`).join("; "),
        );
    });

  program
    .command("estimate")
    .description(
      "before a sweep: estimate items needing work (a sample through the rules, dry run), the sweep's and " +
        "verify's capacity,\nthe normalizer's and audit logger's extra writes per day, and their cost on-demand " +
        "and provisioned against the plan's budget",
    )
    .addOption(tableOption())
    .option("--sample <items>", "items sampled per table (spread over 16 scan segments)", positiveInt, 1000)
    .option(
      "--writes-per-day <n>",
      "application writes per day per table (default: from CloudWatch's ConsumedWriteCapacityUnits over 24 h, on AWS)",
      integerAtLeast(0),
    )
    .option("--pricing <file>", "prices as JSON (see packages/core/pricing.json)")
    .option(
      "--max-wcu <n>",
      "the sweep's budget per table (write units/s): adds how long the sweep takes at it, the workers and " +
        "segments it needs and its cost (capacity model, docs/sweep.md)",
      positiveInt,
    )
    .option("--json", "print the estimate as JSON on stdout")
    .action(
      async (opts: {
        table?: string[];
        sample: number;
        writesPerDay?: number;
        pricing?: string;
        maxWcu?: number;
        json?: boolean;
      }) => {
        const names = resolveTableNames();
        const pricing = JSON.parse(readFileSync(opts.pricing ?? DEFAULT_PRICING, "utf8")) as Pricing;
        const cloudwatch = new CloudWatchClient({});
        try {
          const result = await withClients(({ dynamodb, doc }) =>
            estimate(
              {
                dynamodb,
                doc,
                names,
                tables: selectTables(opts.table, names),
                sampleSize: opts.sample,
                ...(opts.writesPerDay !== undefined ? { writesPerDay: opts.writesPerDay } : {}),
                // CloudWatch describes tables on AWS only: with another DynamoDB endpoint its numbers would be
                // those of a same-named production table.
                writeRate: async (tableName, avgWriteUnits) =>
                  process.env.AWS_ENDPOINT_URL_DYNAMODB && !process.env.AWS_ENDPOINT_URL_CLOUDWATCH
                    ? {
                        source: "unknown",
                        note: "no CloudWatch metrics for a custom DynamoDB endpoint: pass --writes-per-day",
                      }
                    : writeRateFromCloudWatch(cloudwatch, tableName, avgWriteUnits),
              },
              pricing,
            ),
          );
          const capacity =
            opts.maxWcu !== undefined
              ? Object.fromEntries(result.tables.map((t) => [t.table, capacityFromEstimate(t, opts.maxWcu!, pricing)]))
              : undefined;
          if (opts.json) printJson(capacity ? { ...result, capacity } : result);
          else process.stdout.write(`${renderEstimate(result, capacity)}\n`);
        } finally {
          cloudwatch.destroy();
        }
      },
    );
}
