// What the rehearsal's phases share: the engine, the clients, the ledger, the simulated application
// and the stream runner, and the steps several phases take (sweep and verify every table, plan a phase
// as a deploy would, let the stream catch up).
import {
  applyIndexPhase,
  createClients,
  defaultTableNames,
  DeployRefusedError,
  destroyClients,
  enableStreams,
  Ledger,
  liveTablesOf,
  type Phase,
  planDeploy,
  runSweep,
  sweepTables,
  SITELOGIX_TABLES,
  sleep,
  tablesWithRules,
  TABLES,
  verifyAndRecordGate,
  type Clients,
  type SweepCounts,
  type TableNames,
  type TableVerification,
} from "@sitelogix/core";
import { StreamRunner } from "@sitelogix/core/local-esm";
import { ApplicationTraffic, type DynamoDbLocal, startDynamoDbLocal } from "@sitelogix/testkit";
import { createProgress } from "../progress.js";
import { sweepWithWorkers } from "../sweep-workers.js";
import type { RehearsalOptions } from "./rehearsal.js";

export class PhaseFailed extends Error {}

export const RULE_TABLES = tablesWithRules().filter((t) => TABLES[t].existing);
/** Worker processes the rehearsal sweeps personnel with (the others run in this process). */
export const WORKER_TABLE_PROCESSES = 2;
export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Waits until the runner has delivered nothing new for `quietMs`: everything written so far is processed. */
export async function drained(runner: StreamRunner, quietMs = 3000, timeoutMs = 120_000): Promise<void> {
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

export class Rig {
  readonly names: TableNames = defaultTableNames();
  engine?: DynamoDbLocal;
  private started?: { clients: Clients; ledger: Ledger; traffic: ApplicationTraffic };
  private streams?: { runner: StreamRunner; running: Promise<unknown> };

  constructor(readonly options: RehearsalOptions) {}

  log(line: string): void {
    this.options.log(line);
  }

  private get up() {
    if (!this.started) throw new PhaseFailed("DynamoDB Local has not started");
    return this.started;
  }
  get clients(): Clients {
    return this.up.clients;
  }
  get ledger(): Ledger {
    return this.up.ledger;
  }
  get traffic(): ApplicationTraffic {
    return this.up.traffic;
  }
  runner(): StreamRunner {
    if (!this.streams) throw new PhaseFailed("the stream runner has not started");
    return this.streams.runner;
  }

  /** DynamoDB Local (in memory) on a free port or the one asked for; the SDK's variables point at it. */
  async startEngine(): Promise<string> {
    this.engine = await startDynamoDbLocal(this.options.port !== undefined ? { port: this.options.port } : {});
    Object.assign(process.env, this.engine.env);
    const clients = createClients();
    this.started = {
      clients,
      ledger: new Ledger(clients.doc, this.names.ledger),
      traffic: new ApplicationTraffic(clients.doc, this.names, {
        opsPerSecond: this.options.trafficRate,
        tables: RULE_TABLES,
      }),
    };
    return this.engine.endpoint;
  }

  /** Streams on, the normalizer and the audit logger running; waits until the normalizer is live. */
  async startStreams(): Promise<void> {
    await enableStreams(this.clients.dynamodb, this.names, SITELOGIX_TABLES);
    const runner = new StreamRunner({
      clients: this.clients,
      names: this.names,
      ledger: this.ledger,
      from: "trim-horizon",
    });
    const running = runner.run();
    running.catch((err: unknown) => this.log(`stream runner stopped: ${(err as Error).message}`));
    this.streams = { runner, running };
    // The runner records the normalizer live per table when its mapping starts.
    for (const deadline = Date.now() + 30_000; ; ) {
      const states = await Promise.all(RULE_TABLES.map((t) => this.ledger.tableState(t)));
      if (states.every((s) => s.normalizerLiveAt)) break;
      if (Date.now() > deadline) throw new Error("the normalizer did not start on every table within 30 s");
      await sleep(200);
    }
  }

  /** Stops the application and lets the stream runner catch up: the moment a gate is taken. */
  async quiesce(): Promise<void> {
    await this.started?.traffic.stop();
    await drained(this.runner());
  }

  /** Stops the application, the stream runner and DynamoDB Local; idempotent. */
  async shutdown(): Promise<void> {
    await this.started?.traffic.stop();
    this.streams?.runner.stop();
    await this.streams?.running.catch(() => undefined);
    this.streams = undefined;
    if (this.started) destroyClients(this.started.clients);
    this.started = undefined;
    await this.engine?.stop();
  }

  /** What a deploy of `phase` would do here, or why it would refuse (core's deploy plan). */
  async planPhase(phase: Phase) {
    try {
      return await planDeploy({ phase, names: this.names, adopt: false, live: liveTablesOf(this.names, this.clients) });
    } catch (err) {
      if (!(err instanceof DeployRefusedError)) throw err;
      const on = SITELOGIX_TABLES.filter((t) => err.problems.some((p) => p.startsWith(`${this.names[t]}:`)));
      return { refused: `refused on ${on.join(", ")}: ${err.problems.join("; ")}` };
    }
  }

  /** Takes each table with rules to the GSIs of `phase`, one table update at a time. */
  async applyIndexes(phase: Phase, tables: readonly (typeof RULE_TABLES)[number][] = RULE_TABLES) {
    const changes = [];
    for (const table of tables)
      changes.push(
        ...(await applyIndexPhase(this.clients.dynamodb, this.names, table, phase, (change) =>
          this.log(`  ${change.action} ${change.table} ${change.index} (one table update, awaited until ACTIVE)`),
        )),
      );
    return changes;
  }

  /**
   * Sweeps every table with rules, one after the other, as an operator would; personnel with two
   * worker processes claiming segments through the ledger (`sweep --workers 2`, the distributed path).
   */
  async sweepAll() {
    const totals: SweepCounts[] = [];
    const details = [
      "| table | workers | scanned | applied | already normalized | out of scope | conflicts | gone | rejected " +
        "| violations | WCU | duration |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ];
    await sweepTables({
      ledger: this.ledger,
      tables: [...RULE_TABLES],
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      run: async (table, plan) => {
        const progress = createProgress(`sweep ${table}`);
        const workers = table === "personnel" && plan.action !== "dry-run" ? WORKER_TABLE_PROCESSES : 0;
        const common = {
          clients: this.clients,
          ledger: this.ledger,
          table,
          tableName: this.names[table],
          ...(this.options.signal ? { signal: this.options.signal } : {}),
          onProgress: (p: { scanned: number; estimatedTotal: number }) =>
            progress.update(p.scanned, p.estimatedTotal, ""),
        };
        try {
          const r =
            workers > 0 && plan.action !== "dry-run"
              ? await sweepWithWorkers({ ...common, plan, workers })
              : await runSweep({ ...common, plan });
          totals.push(r.counts);
          const k = r.counts;
          details.push(
            `| ${table} | ${workers || 1} | ${k.scanned} | ${k.applied} | ${k.alreadyNormalized} | ${k.outOfScope} ` +
              `| ${k.conflicts} | ${k.gone} | ${k.rejected} | ${k.violations} | ${k.consumedWcu} ` +
              `| ${(r.durationMs / 1000).toFixed(1)} s |`,
          );
          return r;
        } finally {
          progress.stop();
        }
      },
    });
    const total = (f: keyof SweepCounts) => sum(totals.map((t) => t[f]));
    return {
      summary:
        `${total("scanned")} scanned, ${total("applied")} written, ${total("alreadyNormalized")} already ` +
        `normalized, ${total("conflicts")} conflicts, ${total("gone")} gone, ${total("rejected")} rejected, ` +
        `${total("violations")} violations`,
      details,
      rejected: total("rejected"),
    };
  }

  /** Verifies every table with rules and records each gate. */
  async verifyAll(): Promise<TableVerification[]> {
    const results: TableVerification[] = [];
    for (const table of RULE_TABLES)
      results.push(
        await verifyAndRecordGate(this.ledger, {
          doc: this.clients.doc,
          table,
          tableName: this.names[table],
          signal: this.options.signal,
        }),
      );
    return results;
  }
}

/** The report lines of a verify of every table. */
export const verifyDetails = (results: TableVerification[]) =>
  results.flatMap((v) => [
    `- ${v.table}: ${v.green ? "green" : "red"}, ${v.scanned} scanned, ${v.gaps} gaps, ` +
      `${v.violations} violations, ${v.disagreements} disagreements (application values kept)`,
    ...v.indexes
      .filter((i) => i.gaps + i.violations + i.disagreements > 0)
      .flatMap((i) => [
        `  - ${i.index}: ${i.gaps} gaps, ${i.violations} violations, ${i.disagreements} disagreements`,
        ...i.sampleViolations
          .slice(0, 5)
          .map(
            (s) =>
              `    - \`${s.key.PK} / ${s.key.SK}\`: ` +
              s.violations.map((x) => `${x.at} ${x.problem} (${x.type})`).join("; "),
          ),
        ...i.sampleGaps
          .slice(0, 5)
          .map((s) => `    - \`${s.key.PK} / ${s.key.SK}\`: ${s.attributes.join(", ")} missing or stale`),
        ...i.sampleDisagreements
          .slice(0, 3)
          .map((s) => `    - \`${s.key.PK} / ${s.key.SK}\`: ${s.attributes.join(", ")} set by the application`),
      ]),
  ]);
