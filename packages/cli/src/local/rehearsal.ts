// The whole migration, rehearsed on an embedded DynamoDB Local: legacy tables with realistic data,
// expand (streams, normalizer, audit logger) under live application traffic, sweep, verify, the
// application's fix of what only it may fix, sweep and verify again, the gated index phase, index and
// access-pattern checks, contract, and the audit trail (phases.ts). Every phase is timed and checked.
import type { TableNames } from "@sitelogix/core";
import type { DynamoDbLocal } from "@sitelogix/testkit";
import { REHEARSAL_PHASES, type RehearsalPhase } from "./phases.js";
import type { PhaseResult, RehearsalReport } from "./report.js";
import { PhaseFailed, Rig } from "./rig.js";

export interface RehearsalOptions {
  items: number;
  port?: number;
  /**
   * Fix the planted violations as the application would; without it the gate stays red and the index phase is
   * refused.
   */
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
  const rig = new Rig(options);

  /** Runs one phase: timed, its failure recorded with the reason; throws PhaseFailed to stop the rest. */
  const run = async (phase: RehearsalPhase) => {
    if (signal.aborted) throw new PhaseFailed("interrupted");
    log(`▶ ${phase.name}`);
    const started = performance.now();
    try {
      const result = await phase.run(rig);
      // A phase stopped by Ctrl-C returns early (a sweep stops gracefully): it did not pass.
      if (signal.aborted) throw new Error("interrupted");
      const done: PhaseResult = {
        phase: phase.name,
        ok: result.failure === undefined,
        durationMs: performance.now() - started,
        ...result,
      };
      report.phases.push(done);
      log(`${done.ok ? "✔" : "✘"} ${phase.name}: ${done.summary}${done.failure ? ` — ${done.failure}` : ""}`);
      if (!done.ok && !phase.observes) throw new PhaseFailed(done.failure);
    } catch (err) {
      if (err instanceof PhaseFailed) throw err;
      const failure = signal.aborted ? "interrupted" : (err as Error).message;
      report.phases.push({
        phase: phase.name,
        ok: false,
        durationMs: performance.now() - started,
        summary: "error",
        failure,
      });
      log(`✘ ${phase.name}: ${failure}`);
      throw new PhaseFailed(failure);
    } finally {
      if (rig.engine) report.endpoint = rig.engine.endpoint;
    }
  };

  try {
    for (const phase of REHEARSAL_PHASES) if (phase.when?.(options) ?? true) await run(phase);
  } catch (err) {
    if (!(err instanceof PhaseFailed)) throw err;
  }
  return { report, ...(rig.engine ? { engine: rig.engine } : {}), names: rig.names, shutdown: () => rig.shutdown() };
}
