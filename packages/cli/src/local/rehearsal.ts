// The whole migration, rehearsed on an embedded DynamoDB Local: legacy tables with realistic data,
// expand (streams, normalizer, audit logger) under live application traffic, sweep, verify, the
// application's fix of what only it may fix, sweep and verify again, the gated index phase, index and
// access-pattern checks, contract, and the audit trail. Every phase is timed and checked.
import { sleep } from "@sitelogix/core";
import {
  ACCESS_PATTERNS,
  applyIndexPhase,
  AuditTrail,
  checkIndex,
  createClients,
  defaultTableNames,
  DeployRefusedError,
  derivePatch,
  destroyClients,
  enableStreams,
  ensureTables,
  Ledger,
  liveTablesOf,
  type Phase,
  planDeploy,
  MIGRATOR_ACTORS,
  MIGRATOR_TABLES,
  planSweep,
  runAccessPattern,
  runSweep,
  SITELOGIX_TABLES,
  tablesWithRules,
  targetGsis,
  TABLES,
  verifyAndRecordGate,
  type Clients,
  type SweepCounts,
  type TableNames,
  type TableVerification,
} from "@sitelogix/core";
import { readStream, StreamRunner } from "@sitelogix/core/local-esm";
import {
  startDynamoDbLocal,
  type DynamoDbLocal,
  ApplicationTraffic,
  generateDataset,
  loadDataset,
  type SampleRow,
} from "@sitelogix/testkit";
import { createProgress } from "../progress.js";
import { applyApplicationFix } from "./fix.js";
import type { PhaseResult, RehearsalReport } from "./report.js";

export interface RehearsalOptions {
  items: number;
  port?: number;
  /** Fix the planted violations as the application would; without it the gate stays red and the index phase is refused. */
  fix: boolean;
  /** Application writes per second while the migration runs. */
  trafficRate: number;
  signal: AbortSignal;
  log: (line: string) => void;
}

/** What is still running after the rehearsal (for --keep-running), and how to stop it. */
export interface Rehearsal {
  report: RehearsalReport;
  engine?: DynamoDbLocal;
  names: TableNames;
  /** Stops the stream runner and DynamoDB Local; idempotent. */
  shutdown(): Promise<void>;
}

class PhaseFailed extends Error {}

const RULE_TABLES = tablesWithRules().filter((t) => TABLES[t].existing);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Waits until the runner has delivered nothing new for `quietMs`: everything written so far is processed. */
async function drained(runner: StreamRunner, quietMs = 3000, timeoutMs = 120_000): Promise<void> {
  const snapshot = () => JSON.stringify(runner.stats);
  const deadline = Date.now() + timeoutMs;
  let last = snapshot();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new PhaseFailed(`the stream runner did not catch up within ${timeoutMs / 1000} s`);
    await sleep(250);
    const now = snapshot();
    if (now !== last) [last, since] = [now, Date.now()];
  }
}

export async function rehearse(options: RehearsalOptions): Promise<Rehearsal> {
  const { log, signal } = options;
  // The handlers run in this process: their Lambda logs and EMF metrics would bury the rehearsal's own output.
  process.env.POWERTOOLS_LOG_LEVEL ??= "ERROR";
  process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
  const report: RehearsalReport = {
    startedAt: new Date().toISOString(),
    items: options.items,
    endpoint: "",
    phases: [],
  };
  const names = defaultTableNames();
  let engine: DynamoDbLocal | undefined;
  let clients: Clients | undefined;
  let runner: StreamRunner | undefined;
  let running: Promise<unknown> | undefined;
  let traffic: ApplicationTraffic | undefined;

  /** Stops the application and lets the stream runner catch up: the moment a gate is taken. */
  const quiesce = async () => {
    await traffic?.stop();
    await drained(runner!);
  };

  const shutdown = async () => {
    await traffic?.stop();
    runner?.stop();
    await running?.catch(() => undefined);
    runner = undefined;
    if (clients) destroyClients(clients);
    clients = undefined;
    await engine?.stop();
  };

  /**
   * Runs one phase: timed, its failure recorded with the reason. Later phases are skipped after a
   * failure, unless the phase only observes (`continueOnFailure`) and a later one acts on it.
   */
  const phase = async (
    name: string,
    work: () => Promise<Omit<PhaseResult, "phase" | "ok" | "durationMs">>,
    continueOnFailure = false,
  ) => {
    if (signal.aborted) throw new PhaseFailed("interrupted");
    log(`▶ ${name}`);
    const started = performance.now();
    try {
      const result = await work();
      // A phase stopped by Ctrl-C returns early (a sweep stops gracefully): it did not pass.
      if (signal.aborted) throw new Error("interrupted");
      const done: PhaseResult = {
        phase: name,
        ok: result.failure === undefined,
        durationMs: performance.now() - started,
        ...result,
      };
      report.phases.push(done);
      log(`${done.ok ? "✔" : "✘"} ${name}: ${done.summary}${done.failure ? ` — ${done.failure}` : ""}`);
      if (!done.ok && !continueOnFailure) throw new PhaseFailed(done.failure);
    } catch (err) {
      if (err instanceof PhaseFailed) throw err;
      const failure = signal.aborted ? "interrupted" : (err as Error).message;
      report.phases.push({
        phase: name,
        ok: false,
        durationMs: performance.now() - started,
        summary: "error",
        failure,
      });
      log(`✘ ${name}: ${failure}`);
      throw new PhaseFailed(failure);
    }
  };

  try {
    await phase("engine", async () => {
      engine = await startDynamoDbLocal(options.port !== undefined ? { port: options.port } : {});
      Object.assign(process.env, engine.env);
      report.endpoint = engine.endpoint;
      clients = createClients();
      return { summary: `DynamoDB Local (in memory) at ${engine.endpoint}` };
    });
    const c = clients!;
    const ledger = new Ledger(c.doc, names.ledger);
    traffic = new ApplicationTraffic(c.doc, names, { opsPerSecond: options.trafficRate, tables: RULE_TABLES });
    /** What a deploy of `phase` would do here, or why it would refuse (core's deploy plan). */
    const planPhase = async (phase: Phase) => {
      try {
        return await planDeploy({ phase, names, adopt: false, live: liveTablesOf(names, c) });
      } catch (err) {
        if (!(err instanceof DeployRefusedError)) throw err;
        const on = SITELOGIX_TABLES.filter((t) => err.problems.some((p) => p.startsWith(`${names[t]}:`)));
        return { refused: `refused on ${on.join(", ")}: ${err.problems.join("; ")}` };
      }
    };

    await phase("legacy tables and data", async () => {
      // Production before the migration: no streams yet, so old items have no stream records.
      await ensureTables(c.dynamodb, names, "legacy", { streams: false });
      const perTable: Record<string, number> = {};
      let large = 0;
      function* tally(rows: Iterable<SampleRow>) {
        for (const row of rows) {
          perTable[row.table] = (perTable[row.table] ?? 0) + 1;
          if (typeof row.item.transcript === "string" && row.item.transcript.length >= 100_000) large++;
          // The application leaves its bad records alone until its fix: verify must find every planted one.
          if (derivePatch(row.table, row.item, { mode: "sweep" }).violations.length === 0)
            traffic!.know(row.table, { PK: String(row.item.PK), SK: String(row.item.SK) });
          yield row;
        }
      }
      const loaded = await loadDataset(
        c.doc,
        names,
        tally(generateDataset({ items: options.items, violations: true })),
      );
      return {
        summary: `${SITELOGIX_TABLES.length + MIGRATOR_TABLES.length} tables, ${loaded} items (${Object.entries(
          perTable,
        )
          .map(([t, n]) => `${t} ${n}`)
          .join(", ")}; ${large} transcripts of 100 KB+)`,
      };
    });

    await phase("expand", async () => {
      await enableStreams(c.dynamodb, names, SITELOGIX_TABLES);
      runner = new StreamRunner({ clients: c, names, ledger, from: "trim-horizon" });
      running = runner.run();
      running.catch((err: unknown) => log(`stream runner stopped: ${(err as Error).message}`));
      // The runner records the normalizer live per table when its mapping starts.
      for (const deadline = Date.now() + 30_000; ; ) {
        const states = await Promise.all(RULE_TABLES.map((t) => ledger.tableState(t)));
        if (states.every((s) => s.normalizerLiveAt)) break;
        if (Date.now() > deadline) throw new Error("the normalizer did not start on every table within 30 s");
        await sleep(200);
      }
      traffic!.start();
      return {
        summary: `streams on ${SITELOGIX_TABLES.length} tables; normalizer and audit logger running; application traffic at ${options.trafficRate} writes/s`,
      };
    });

    const sweepAll = async () => {
      const totals: SweepCounts[] = [];
      const details = [
        "| table | scanned | applied | already normalized | out of scope | conflicts | gone | rejected | violations | WCU | duration |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
      ];
      for (const table of RULE_TABLES) {
        const plan = await planSweep(ledger, table, {});
        if (plan.action === "skip") continue;
        const progress = createProgress(`sweep ${table}`);
        try {
          const r = await runSweep({
            clients: c,
            ledger,
            table,
            tableName: names[table],
            plan,
            signal,
            onProgress: (p) => progress.update(p.scanned, p.estimatedTotal, ""),
          });
          totals.push(r.counts);
          const k = r.counts;
          details.push(
            `| ${table} | ${k.scanned} | ${k.applied} | ${k.alreadyNormalized} | ${k.outOfScope} | ${k.conflicts} | ${k.gone} | ${k.rejected} | ${k.violations} | ${k.consumedWcu} | ${(r.durationMs / 1000).toFixed(1)} s |`,
          );
        } finally {
          progress.stop();
        }
      }
      const total = (f: keyof SweepCounts) => sum(totals.map((t) => t[f]));
      return {
        summary: `${total("scanned")} scanned, ${total("applied")} written, ${total("alreadyNormalized")} already normalized, ${total("conflicts")} conflicts, ${total("gone")} gone, ${total("rejected")} rejected, ${total("violations")} violations`,
        details,
        rejected: total("rejected"),
      };
    };

    const verifyAll = async (): Promise<TableVerification[]> => {
      const results: TableVerification[] = [];
      for (const table of RULE_TABLES) {
        results.push(await verifyAndRecordGate(ledger, { doc: c.doc, table, tableName: names[table], signal }));
      }
      return results;
    };
    const verifyDetails = (results: TableVerification[]) =>
      results.flatMap((v) => [
        `- ${v.table}: ${v.green ? "green" : "red"}, ${v.scanned} scanned, ${v.gaps} gaps, ${v.violations} violations, ${v.disagreements} disagreements (application values kept)`,
        ...v.indexes
          .filter((i) => i.gaps + i.violations + i.disagreements > 0)
          .flatMap((i) => [
            `  - ${i.index}: ${i.gaps} gaps, ${i.violations} violations, ${i.disagreements} disagreements`,
            ...i.sampleViolations
              .slice(0, 5)
              .map(
                (s) =>
                  `    - \`${s.key.PK} / ${s.key.SK}\`: ${s.violations.map((x) => `${x.at} ${x.problem} (${x.type})`).join("; ")}`,
              ),
            ...i.sampleGaps
              .slice(0, 5)
              .map((s) => `    - \`${s.key.PK} / ${s.key.SK}\`: ${s.attributes.join(", ")} missing or stale`),
            ...i.sampleDisagreements
              .slice(0, 3)
              .map((s) => `    - \`${s.key.PK} / ${s.key.SK}\`: ${s.attributes.join(", ")} set by the application`),
          ]),
      ]);

    await phase("sweep", async () => {
      const r = await sweepAll();
      return { summary: r.summary, details: r.details };
    });

    await phase("verify (violations expected)", async () => {
      await quiesce();
      const results = await verifyAll();
      const gaps = sum(results.map((v) => v.gaps));
      const violations = sum(results.map((v) => v.violations));
      // The sweep and the normalizer leave no gap; what remains are the planted violations, which only the application may fix.
      const failure =
        gaps > 0
          ? `${gaps} gaps remain after the sweep: the migrator did not converge`
          : violations === 0
            ? "the planted violations were not found"
            : undefined;
      return {
        summary: `red as expected: ${violations} items with violations, ${gaps} gaps`,
        details: verifyDetails(results),
        ...(failure ? { failure } : {}),
      };
    });

    if (options.fix) {
      await phase("application fix", async () => {
        traffic!.start();
        const fixed = await applyApplicationFix(c.doc, names, RULE_TABLES);
        return {
          summary: `${fixed.items} items fixed by the application (${Object.entries(fixed.byProblem)
            .map(([p, n]) => `${n}× ${p}`)
            .join(", ")})`,
        };
      });
      await phase("sweep again", async () => {
        const r = await sweepAll();
        return {
          summary: r.summary,
          details: r.details,
          ...(r.rejected > 0 ? { failure: `${r.rejected} writes rejected` } : {}),
        };
      });
    }

    await phase(
      "verify (the gate)",
      async () => {
        await quiesce();
        const results = await verifyAll();
        const red = results.filter((v) => !v.green);
        return {
          summary:
            red.length === 0 ? `green on ${results.length} tables` : `red on ${red.map((v) => v.table).join(", ")}`,
          details: verifyDetails(results),
          ...(red.length > 0
            ? {
                failure: `the gate is red on ${red.map((v) => `${v.table} (${v.gaps} gaps, ${v.violations} violations)`).join(", ")}`,
              }
            : {}),
        };
        // A red gate is the index phase's to refuse: the report then shows the refusal and its reasons.
      },
      true,
    );

    await phase("index phase", async () => {
      traffic!.start();
      // The deploy's own plan and refusals (core phases), against the rehearsal's endpoint.
      const plan = await planPhase("index");
      if ("refused" in plan) return { summary: plan.refused.split(":")[0]!, failure: `index phase ${plan.refused}` };
      const created: string[] = [];
      for (const table of RULE_TABLES) {
        const changes = await applyIndexPhase(c.dynamodb, names, table, "index", (change) =>
          log(`  ${change.action} ${change.table} ${change.index} (one table update, awaited until ACTIVE)`),
        );
        created.push(...changes.map((ch) => `${table} ${ch.index}`));
      }
      return {
        summary: `${created.length} GSIs created under live traffic, each after its table's gate: ${created.join(", ")}`,
      };
    });

    await phase("index checks", async () => {
      await quiesce();
      const stats = traffic!.stats;
      const checks = [];
      for (const table of SITELOGIX_TABLES)
        for (const gsi of targetGsis(table)) checks.push(await checkIndex(c.doc, names, table, gsi));
      const patterns = [];
      for (const pattern of ACCESS_PATTERNS) patterns.push(await runAccessPattern(c.doc, names, pattern));
      const badChecks = checks.filter((x) => !x.ok);
      const badPatterns = patterns.filter((p) => !p.ok);
      const failure = [
        ...badChecks.map(
          (x) =>
            `${x.table} ${x.index}: ${x.missing.length} missing (${x.missing.join(", ")}), ${x.unexpected.length} unexpected (${x.unexpected.join(", ")})`,
        ),
        ...badPatterns.map((p) => `${p.name}: ${p.problem}`),
      ].join("; ");
      return {
        summary: `after ${stats.insert + stats.update + stats.delete + stats.fullPut} application writes; ${checks.length - badChecks.length}/${checks.length} indexes hold exactly their items; ${patterns.length - badPatterns.length}/${patterns.length} access patterns ok`,
        details: [
          `Application traffic: ${stats.insert} inserts, ${stats.update} updates, ${stats.delete} deletes, ${stats.fullPut} old-code full puts, ${stats.conflicts} optimistic-lock conflicts, ${stats.errors} errors.`,
          "",
          "| table | index | items that should be indexed | items the index returns | result |",
          "|---|---|---|---|---|",
          ...checks.map(
            (x) => `| ${x.table} | ${x.index} | ${x.expected} | ${x.indexed} | ${x.ok ? "ok" : "MISMATCH"} |`,
          ),
          "",
          "| access pattern | index | queried value | items | result |",
          "|---|---|---|---|---|",
          ...patterns.map(
            (p) => `| ${p.name} | ${p.index} | ${p.value ?? ""} | ${p.items} | ${p.ok ? "ok" : p.problem} |`,
          ),
        ],
        ...(failure ? { failure } : {}),
      };
    });

    await phase("contract", async () => {
      const plan = await planPhase("contract");
      if ("refused" in plan) return { summary: plan.refused.split(":")[0]!, failure: `contract phase ${plan.refused}` };
      const changes = await applyIndexPhase(c.dynamodb, names, "personnel", "contract");
      // The end state is exactly the target schema: `tables create --schema target` would accept it.
      await ensureTables(c.dynamodb, names, "target");
      return {
        summary: `${changes.map((ch) => `${ch.action}d ${ch.table} ${ch.index}`).join(", ") || "nothing to drop"}; every table now matches the target schema (14 GSIs)`,
      };
    });

    await phase("audit trail", async () => {
      // Traffic is stopped and the runner idle: no record arrives while the trail is compared with the
      // streams (the runner stays up for --keep-running).
      await drained(runner!);
      const trail = new AuditTrail(c.dynamodb, names);
      const details: string[] = ["| table | stream records | audit entries |", "|---|---|---|"];
      const incomplete: string[] = [];
      for (const table of SITELOGIX_TABLES) {
        const records = (await readStream(c, names[table])).length;
        let entries = 0;
        for await (const _ of trail.byTable(table)) entries++;
        details.push(`| ${table} | ${records} | ${entries} |`);
        if (entries !== records) incomplete.push(`${table}: ${records} records, ${entries} entries`);
      }
      // An entity's history: a report the application changed and the migrator normalized.
      let sample: { keys: Record<string, string>; lines: string[] } | undefined;
      for await (const entry of trail.byActor(MIGRATOR_ACTORS.normalizer)) {
        if (entry.table !== "reports") continue;
        const lines: string[] = [];
        for await (const e of trail.history("reports", entry.keys))
          lines.push(`| ${e.sequenceNumber} | ${e.eventName} | ${e.actor} | ${e.changed.join(", ")} |`);
        sample = { keys: entry.keys, lines };
        break;
      }
      let migratorEntries = 0;
      for await (const _ of trail.byActor(MIGRATOR_ACTORS.sweep)) migratorEntries++;
      const verified = await trail.verify();
      details.push(
        "",
        `Entries attributed to ${MIGRATOR_ACTORS.sweep}: ${migratorEntries}.`,
        "",
        ...(sample
          ? [
              `History of reports \`${sample.keys.PK} / ${sample.keys.SK}\` (attribute names only):`,
              "",
              "| sequence | event | actor | changed |",
              "|---|---|---|---|",
              ...sample.lines,
            ]
          : []),
        "",
        `audit verify: ${verified.problems.length === 0 ? "every chain intact" : `${verified.problems.length} problems`} (${verified.chains} chains, ${verified.entries} entries).`,
      );
      const failure = [
        ...incomplete,
        ...verified.problems.slice(0, 5).map((p) => `${p.table} ${Object.values(p.keys).join(" / ")}: ${p.problem}`),
      ].join("; ");
      return {
        summary: `${verified.entries} entries in ${verified.chains} chains, one per stream record; ${migratorEntries} by the sweep; audit verify ${verified.problems.length === 0 ? "intact" : "TAMPERED"}`,
        details,
        ...(failure ? { failure } : {}),
      };
    });
  } catch (err) {
    if (!(err instanceof PhaseFailed)) throw err;
  }
  return { report, engine, names, shutdown };
}
