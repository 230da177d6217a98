import type { Command } from "commander";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import {
  resolveTableNames,
  stageNotifier,
  verifyAndRecordGate,
  type GateVerification,
  type IndexGateDecision,
  type PhaseEvent,
  type TableVerification,
  withClients,
} from "@sitelogix/core";
import { onTable } from "../args.js";
import { selectTables, tableOption } from "../options.js";
import { EXIT, printJson, say } from "../output.js";
import { createProgress } from "../progress.js";

const SAMPLES_SHOWN = 5;
const keyText = (k: Record<string, string>) =>
  Object.entries(k)
    .map(([n, v]) => `${n}=${v}`)
    .join(" ");

function describe(v: TableVerification, gate: IndexGateDecision): string {
  const seconds = (v.durationMs / 1000).toFixed(1);
  const head = `${v.table} (${v.tableName}): ${v.green ? "GREEN" : "RED"} — ${v.scanned} items scanned in ${seconds} s`;
  const disagreements =
    v.disagreements > 0
      ? `; ${v.disagreements} items where the application's value differs from the rules (informational)`
      : "";
  const lines = [
    v.green
      ? `${head}${disagreements}`
      : `${head}; ${v.gaps} items with gaps, ${v.violations} with violations${disagreements}`,
  ];
  for (const i of v.indexes) {
    if (i.gaps === 0 && i.violations === 0 && i.disagreements === 0) continue;
    const counts = `${i.gaps} gaps, ${i.violations} violations, ${i.disagreements} disagreements`;
    lines.push(`  ${i.index} (${i.keyAttributes.join(", ")}): ${counts}`);
    for (const s of i.sampleGaps.slice(0, SAMPLES_SHOWN))
      lines.push(`    gap        ${keyText(s.key)}: ${s.attributes.join(", ")} missing or stale`);
    for (const s of i.sampleViolations.slice(0, SAMPLES_SHOWN)) {
      const problems = s.violations.map((x) => `${x.attribute} ${x.problem} (${x.at}: ${x.type})`).join("; ");
      lines.push(`    violation  ${keyText(s.key)}: ${problems}`);
    }
    for (const s of i.sampleDisagreements.slice(0, SAMPLES_SHOWN)) {
      const attributes = s.attributes.join(", ");
      lines.push(`    disagrees  ${keyText(s.key)}: ${attributes} set by the application, not what the rules derive`);
    }
  }
  // What the gate decides with this result (also the deploy's check): open, or what still blocks it.
  lines.push(
    gate.allowed
      ? "  index gate: open (the index phase may add this table's target GSIs)"
      : `  index gate: closed — ${gate.reasons.join("; ")}`,
  );
  return lines.join("\n");
}

/** The phase event of one verify run: the gate green on every table verified, or red and where. */
function gateEvent(results: Record<string, GateVerification>): PhaseEvent {
  const all = Object.values(results);
  const red = all.filter((r) => !r.green);
  const line = (r: GateVerification) => {
    const result = r.green ? "green" : `red (${r.gaps} items with gaps, ${r.violations} with violations)`;
    const gate = r.indexGate.allowed ? "open" : `closed: ${r.indexGate.reasons.join("; ")}`;
    return `${r.table}: ${result}; index gate ${gate}`;
  };
  return red.length === 0
    ? { kind: "gate-green", summary: `gate green: ${all.map((r) => r.table).join(", ")}`, details: all.map(line) }
    : {
        kind: "gate-red",
        summary: `gate red: ${red.map((r) => r.table).join(", ")}`,
        details: [...all.map(line), "Details: sitelogix-migrate verify --json"],
      };
}

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description(
      "the index gate: a parallel full scan per table that counts, per target GSI, " +
        "gaps (a key attribute the rules would write is missing, empty or stale) " +
        "and violations (a key attribute that is not a string or is empty and cannot be derived; " +
        "a source of the wrong type; an unmapped value), with up to 20 sample keys each. It also counts " +
        "disagreements: a derived key attribute (status, timestamp, dateLastSeen, vendor_type) the application wrote " +
        "holds another value than the rules would derive; the migrator never overwrites it, " +
        "the item is indexed under the application's value, and the gate is not affected (informational). " +
        "Items flagged by the scan are re-read before counting. " +
        "Records the result in the ledger with the scan's start time and prints what the " +
        "index gate then decides per table: open, or each reason it stays closed and the command that fixes it. " +
        "Exit 0 when every table is clean, 3 when any has gaps or violations, 1 on error.",
    )
    .addOption(tableOption("tables to verify"))
    .option("--json", "print one JSON document on stdout: per table the counts and per index the sample keys")
    .action(async (opts: { table?: string[]; json?: boolean }) => {
      const names = resolveTableNames();
      const tables = selectTables(opts.table, names);
      const notifier = stageNotifier();
      try {
        await withClients(async (clients, ledger) => {
          const results: Record<string, GateVerification> = {};
          for (const table of tables) {
            const tableName = names[table];
            const description = await onTable(tableName, () =>
              clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName })),
            );
            const total = description.Table?.ItemCount ?? 0;
            const progress = createProgress(`verify ${table}`);
            // The table exists (described above): a missing table now is the ledger.
            const v = await onTable(names.ledger, () =>
              verifyAndRecordGate(ledger, {
                doc: clients.doc,
                table,
                tableName,
                onProgress: (scanned) => progress.update(scanned, total, ""),
              }),
            ).finally(() => progress.stop());
            results[table] = v;
            say(describe(v, v.indexGate));
          }
          const green = Object.values(results).every((r) => r.green);
          const sent = await notifier.notify(gateEvent(results));
          if (sent.error) say(`the gate notification was not sent: ${sent.error}`);
          if (opts.json) printJson({ green, tables: results });
          if (!green) process.exitCode = EXIT.gaps;
        }, names);
      } finally {
        notifier.close();
      }
    });
}
