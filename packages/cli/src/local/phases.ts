// The rehearsal, phase by phase: what each one does and what must hold after it. A phase returns a
// summary (and details for the report); a `failure` says what did not hold. Phases run in order; after
// a failure the rest are skipped, unless the failed phase only observes and a later one acts on it
// (a red gate is the index phase's to refuse, as a deploy would).
import {
  ACCESS_PATTERNS,
  AuditTrail,
  checkIndex,
  derivePatch,
  ensureTables,
  localSignerFor,
  localStoreFor,
  MIGRATOR_ACTORS,
  MIGRATOR_TABLES,
  retentionFromEnv,
  runAccessPattern,
  sealAuditDigest,
  SITELOGIX_TABLES,
  targetGsis,
} from "@sitelogix/core";
import { readStream } from "@sitelogix/core/local-esm";
import { generateDataset, loadDataset, type SampleRow } from "@sitelogix/testkit";
import { applyApplicationFix } from "./fix.js";
import type { RehearsalOptions } from "./rehearsal.js";
import type { PhaseResult } from "./report.js";
import { drained, RULE_TABLES, type Rig, sum, verifyDetails } from "./rig.js";

export interface RehearsalPhase {
  name: string;
  /** Whether the phase belongs to this rehearsal (default: always). */
  when?: (options: RehearsalOptions) => boolean;
  /** A failure here does not stop the rehearsal: a later phase acts on what this one found. */
  observes?: boolean;
  run(rig: Rig): Promise<Omit<PhaseResult, "phase" | "ok" | "durationMs">>;
}

export const REHEARSAL_PHASES: RehearsalPhase[] = [
  {
    name: "engine",
    async run(rig) {
      return { summary: `DynamoDB Local (in memory) at ${await rig.startEngine()}` };
    },
  },
  {
    name: "legacy tables and data",
    async run(rig) {
      // Production before the migration: no streams yet, so old items have no stream records.
      await ensureTables(rig.clients.dynamodb, rig.names, "legacy", { streams: false });
      const perTable: Record<string, number> = {};
      let large = 0;
      function* tally(rows: Iterable<SampleRow>) {
        for (const row of rows) {
          perTable[row.table] = (perTable[row.table] ?? 0) + 1;
          if (typeof row.item.transcript === "string" && row.item.transcript.length >= 100_000) large++;
          // The application leaves its bad records alone until its fix: verify must find every planted one.
          if (derivePatch(row.table, row.item, { mode: "sweep" }).violations.length === 0)
            rig.traffic.know(row.table, { PK: String(row.item.PK), SK: String(row.item.SK) });
          yield row;
        }
      }
      const loaded = await loadDataset(
        rig.clients.doc,
        rig.names,
        tally(generateDataset({ items: rig.options.items, violations: true })),
      );
      return {
        summary: `${SITELOGIX_TABLES.length + MIGRATOR_TABLES.length} tables, ${loaded} items (${Object.entries(
          perTable,
        )
          .map(([t, n]) => `${t} ${n}`)
          .join(", ")}; ${large} transcripts of 100 KB+)`,
      };
    },
  },
  {
    name: "expand",
    async run(rig) {
      await rig.startStreams();
      rig.traffic.start();
      return {
        summary:
          `streams on ${SITELOGIX_TABLES.length} tables; normalizer and audit logger running; ` +
          `application traffic at ${rig.options.trafficRate} writes/s`,
      };
    },
  },
  {
    name: "sweep",
    async run(rig) {
      const r = await rig.sweepAll();
      return { summary: r.summary, details: r.details };
    },
  },
  {
    name: "verify (violations expected)",
    async run(rig) {
      await rig.quiesce();
      const results = await rig.verifyAll();
      const gaps = sum(results.map((v) => v.gaps));
      const violations = sum(results.map((v) => v.violations));
      // The sweep and the normalizer leave no gap; what remains are the planted violations, which only the
      // application may fix.
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
    },
  },
  {
    name: "application fix",
    when: (options) => options.fix,
    async run(rig) {
      rig.traffic.start();
      const fixed = await applyApplicationFix(rig.clients.doc, rig.names, RULE_TABLES);
      return {
        summary: `${fixed.items} items fixed by the application (${Object.entries(fixed.byProblem)
          .map(([p, n]) => `${n}× ${p}`)
          .join(", ")})`,
      };
    },
  },
  {
    name: "sweep again",
    when: (options) => options.fix,
    async run(rig) {
      const r = await rig.sweepAll();
      return {
        summary: r.summary,
        details: r.details,
        ...(r.rejected > 0 ? { failure: `${r.rejected} writes rejected` } : {}),
      };
    },
  },
  {
    name: "verify (the gate)",
    // A red gate is the index phase's to refuse: the report then shows the refusal and its reasons.
    observes: true,
    async run(rig) {
      await rig.quiesce();
      const results = await rig.verifyAll();
      const red = results.filter((v) => !v.green);
      return {
        summary:
          red.length === 0 ? `green on ${results.length} tables` : `red on ${red.map((v) => v.table).join(", ")}`,
        details: verifyDetails(results),
        ...(red.length > 0
          ? {
              failure: `the gate is red on ${red
                .map((v) => `${v.table} (${v.gaps} gaps, ${v.violations} violations)`)
                .join(", ")}`,
            }
          : {}),
      };
      // A red gate is the index phase's to refuse: the report then shows the refusal and its reasons.
    },
  },
  {
    name: "index phase",
    async run(rig) {
      rig.traffic.start();
      // The deploy's own plan and refusals (core phases), against the rehearsal's endpoint.
      const plan = await rig.planPhase("index");
      if ("refused" in plan) return { summary: plan.refused.split(":")[0]!, failure: `index phase ${plan.refused}` };
      const created = (await rig.applyIndexes("index")).map((ch) => `${ch.table} ${ch.index}`);
      return {
        summary:
          `${created.length} GSIs created under live traffic, each after its table's gate: ` + `${created.join(", ")}`,
      };
    },
  },
  {
    name: "index checks",
    async run(rig) {
      await rig.quiesce();
      const stats = rig.traffic.stats;
      const checks = [];
      for (const table of SITELOGIX_TABLES)
        for (const gsi of targetGsis(table)) checks.push(await checkIndex(rig.clients.doc, rig.names, table, gsi));
      const patterns = [];
      for (const pattern of ACCESS_PATTERNS) patterns.push(await runAccessPattern(rig.clients.doc, rig.names, pattern));
      const badChecks = checks.filter((x) => !x.ok);
      const badPatterns = patterns.filter((p) => !p.ok);
      const failure = [
        ...badChecks.map(
          (x) =>
            `${x.table} ${x.index}: ${x.missing.length} missing (${x.missing.join(", ")}), ` +
            `${x.unexpected.length} unexpected (${x.unexpected.join(", ")})`,
        ),
        ...badPatterns.map((p) => `${p.name}: ${p.problem}`),
      ].join("; ");
      return {
        summary:
          `after ${stats.insert + stats.update + stats.delete + stats.fullPut} application writes; ` +
          `${checks.length - badChecks.length}/${checks.length} indexes hold exactly their items; ` +
          `${patterns.length - badPatterns.length}/${patterns.length} access patterns ok`,
        details: [
          `Application traffic: ${stats.insert} inserts, ${stats.update} updates, ${stats.delete} deletes, ` +
            `${stats.fullPut} old-code full puts, ${stats.conflicts} optimistic-lock conflicts, ` +
            `${stats.errors} errors.`,
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
    },
  },
  {
    name: "contract",
    async run(rig) {
      const plan = await rig.planPhase("contract");
      if ("refused" in plan) return { summary: plan.refused.split(":")[0]!, failure: `contract phase ${plan.refused}` };
      const changes = await rig.applyIndexes("contract", ["personnel"]);
      // The end state is exactly the target schema: `tables create --schema target` would accept it.
      await ensureTables(rig.clients.dynamodb, rig.names, "target");
      return {
        summary:
          `${changes.map((ch) => `${ch.action}d ${ch.table} ${ch.index}`).join(", ") || "nothing to drop"}; ` +
          "every table now matches the target schema (14 GSIs)",
      };
    },
  },
  {
    name: "audit trail",
    async run(rig) {
      // Traffic is stopped and the runner idle: no record arrives while the trail is compared with the
      // streams (the runner stays up for --keep-running).
      await drained(rig.runner());
      const trail = new AuditTrail(rig.clients.dynamodb, rig.names);
      const details: string[] = ["| table | stream records | audit entries |", "|---|---|---|"];
      const incomplete: string[] = [];
      for (const table of SITELOGIX_TABLES) {
        const records = (await readStream(rig.clients, rig.names[table])).length;
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
      // Sealed with the endpoint's local key (as the digest writer seals with KMS on AWS), then verified
      // against the digest: every entry is sealed, none is reported as tampered.
      const signer = await localSignerFor({ auditTableName: rig.names.audit });
      const store = localStoreFor({ auditTableName: rig.names.audit });
      const sealed = await sealAuditDigest({
        doc: rig.clients.doc,
        auditTableName: rig.names.audit,
        signer,
        store,
        settleSeconds: 0,
      });
      const verified = await trail.verify({
        digests: { store, publicKeyPem: () => signer.publicKeyPem() },
        retention: retentionFromEnv(),
      });
      if (verified.unsealed.entries > 0) incomplete.push(`${verified.unsealed.entries} entries not sealed`);
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
        `audit seal: ${sealed.digest} of ${sealed.heads} chain heads, signed with the local key ${signer.keyId}, ` +
          `in ${sealed.location}.`,
        "",
        `audit verify: ${verified.intact ? "every chain intact" : `${verified.problems.length} problems`}` +
          ` (${verified.chains} chains, ${verified.entries} entries; ${verified.digests.count} signed digests, ` +
          `${verified.unsealed.entries} entries unsealed).`,
      );
      const failure = [
        ...incomplete,
        ...verified.problems.slice(0, 5).map((p) => `${p.table} ${Object.values(p.keys).join(" / ")}: ${p.problem}`),
      ].join("; ");
      return {
        summary:
          `${verified.entries} entries in ${verified.chains} chains, one per stream record; ` +
          `${migratorEntries} by the sweep; audit verify ${verified.problems.length === 0 ? "intact" : "TAMPERED"}` +
          ` against ${sealed.digest}`,
        details,
        ...(failure ? { failure } : {}),
      };
    },
  },
];
