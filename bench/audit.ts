// Benchmark: the audit trail's verification and sealing on DynamoDB Local. An audit table is filled
// directly (chains of entries hashed and stored exactly as the audit logger writes them, without its
// one-transaction-per-record pace), sealed by the CLI (`audit seal`, in a child process: heads/s
// and its peak RSS, which must stay flat as heads grow) and verified against the digest in process
// (entries/s; target ≥ 2,000).
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchWriteItemCommand, type WriteRequest } from "@aws-sdk/client-dynamodb";
import {
  AuditTrail,
  createClients,
  defaultTableNames,
  destroyClients,
  entityId,
  localSignerFor,
  localStoreFor,
  type EntryContent,
} from "@sitelogix/core";
import { headOf, placeEntry, type ChainHead } from "@sitelogix/core/audit/chain";
import { headItem, storedEntry } from "@sitelogix/core/audit/store";
import { dropTable, freshTable, round, rssMiB, type BenchContext, type OptionValue } from "./lib.js";

const CLI = new URL("../packages/cli/bin/sitelogix-migrate.js", import.meta.url).pathname;
const TARGET_ENTRIES_PER_SECOND = 2_000;

export interface AuditBenchResult {
  chains: number;
  entries: number;
  loadSeconds: number;
  seal: { heads: number; seconds: number; headsPerSecond: number; peakRssMiB: number; wallSeconds: number };
  verify: { entries: number; seconds: number; entriesPerSecond: number; intact: boolean; targetMet: boolean };
}

/** A report's change, as the audit logger would record it. */
function content(table: string, i: number, seq: bigint): EntryContent {
  const keys = { PK: `REPORT#b${String(i).padStart(7, "0")}`, SK: "METADATA" };
  return {
    entity: entityId("reports", keys),
    table: "reports",
    tableName: table,
    keys,
    eventName: "MODIFY",
    eventId: `bench-${seq}`,
    sequenceNumber: String(seq),
    at: new Date().toISOString(),
    actor: "user_1",
    actorBasis: "new:lastModifiedBy",
    changed: ["weather", "updatedAt"],
    old: { weather: { S: "sun" }, updatedAt: { S: "2025-01-01T00:00:00Z" } },
    new: { weather: { S: `w${seq}` }, updatedAt: { S: new Date().toISOString() } },
  };
}

async function batchWrite(dynamodb: ReturnType<typeof createClients>["dynamodb"], table: string, all: WriteRequest[]) {
  const batches: WriteRequest[][] = [];
  for (let i = 0; i < all.length; i += 25) batches.push(all.slice(i, i + 25));
  const worker = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      let pending: WriteRequest[] = batch;
      while (pending.length) {
        const out = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
        pending = out.UnprocessedItems?.[table] ?? [];
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

export async function benchAudit(
  context: BenchContext,
  o: { chains: number; entriesPerChain: number },
): Promise<AuditBenchResult> {
  const prefix = `auditbench${Date.now() % 100_000}-`;
  const names = defaultTableNames(prefix);
  const clients = createClients({ endpoint: context.local.endpoint });
  const home = await mkdtemp(join(tmpdir(), "audit-bench-"));
  const table = await freshTable(clients.dynamodb, "audit", names.audit);
  try {
    context.log(`audit: loading ${o.chains} chains × ${o.entriesPerChain} entries`);
    const loadStarted = performance.now();
    let seq = 100_000_000n;
    for (let from = 0; from < o.chains; from += 1000) {
      const requests: WriteRequest[] = [];
      for (let i = from; i < Math.min(o.chains, from + 1000); i++) {
        let head: ChainHead | undefined;
        for (let e = 0; e < o.entriesPerChain; e++) {
          const entry = placeEntry(content(names.reports, i, seq++), head, new Date(), { years: 7 });
          requests.push({ PutRequest: { Item: storedEntry(entry).item } });
          head = headOf(entry);
          if (e === o.entriesPerChain - 1) requests.push({ PutRequest: { Item: headItem(entry, head) } });
        }
      }
      await batchWrite(clients.dynamodb, table, requests);
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const entries = o.chains * o.entriesPerChain;

    context.log("audit: sealing (CLI child process)");
    const env = { ...process.env, SITELOGIX_TABLE_PREFIX: prefix, SITELOGIX_AUDIT_HOME: home };
    const wallStarted = performance.now();
    const child = spawn(process.execPath, [CLI, "audit", "seal", "--settle", "0", "--json"], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    let peak = 0;
    const poll = setInterval(() => {
      const rss = rssMiB(child.pid!);
      if (rss) peak = Math.max(peak, rss.peak);
    }, 100);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearInterval(poll);
    if (code !== 0) throw new Error(`audit seal exited ${code}`);
    const sealed = JSON.parse(stdout) as { heads: number; durationMs: number };
    const seal = {
      heads: sealed.heads,
      seconds: round(sealed.durationMs / 1000, 1),
      headsPerSecond: round(sealed.heads / (sealed.durationMs / 1000)),
      peakRssMiB: round(peak, 1),
      wallSeconds: round((performance.now() - wallStarted) / 1000, 1),
    };
    context.log(`audit: sealed ${seal.heads} heads at ${seal.headsPerSecond}/s, peak RSS ${seal.peakRssMiB} MiB`);

    const envOf = { env: { ...process.env, SITELOGIX_AUDIT_HOME: home }, auditTableName: names.audit };
    const signer = await localSignerFor(envOf);
    const trail = new AuditTrail(clients.dynamodb, names);
    const verifyStarted = performance.now();
    const report = await trail.verify({
      digests: { store: localStoreFor(envOf), publicKeyPem: () => signer.publicKeyPem() },
    });
    const seconds = (performance.now() - verifyStarted) / 1000;
    const verify = {
      entries: report.entries,
      seconds: round(seconds, 1),
      entriesPerSecond: round(report.entries / seconds),
      intact: report.intact && report.unsealed.entries === 0 && report.entries === entries,
      targetMet: report.entries / seconds >= TARGET_ENTRIES_PER_SECOND,
    };
    context.log(`audit: verified ${verify.entries} entries at ${verify.entriesPerSecond}/s (intact: ${verify.intact})`);
    return { chains: o.chains, entries, loadSeconds: round(loadSeconds, 1), seal, verify };
  } finally {
    await dropTable(clients.dynamodb, table);
    destroyClients(clients);
    await rm(home, { recursive: true, force: true });
  }
}

export function formatAuditBench(r: AuditBenchResult): string {
  return [
    "## Audit trail: verify and seal",
    "",
    `${r.chains} chains × ${r.entries / r.chains} entries (${r.entries} entries, loaded in ${r.loadSeconds} s).`,
    "",
    "| measure | figure |",
    "|---|---|",
    `| \`audit verify\` (every entry, chain, head and digest; one parallel scan) | **${r.verify.entriesPerSecond}** ` +
      `entries/s (${r.verify.entries} in ${r.verify.seconds} s; target ≥ ${TARGET_ENTRIES_PER_SECOND}: ` +
      `${r.verify.targetMet ? "met" : "NOT met"}; intact: ${r.verify.intact}) |`,
    `| \`audit seal\` (CLI) | **${r.seal.headsPerSecond}** heads/s (${r.seal.heads} heads in ${r.seal.seconds} s; ` +
      `${r.seal.wallSeconds} s with the CLI's start) |`,
    `| \`audit seal\` peak RSS | ${r.seal.peakRssMiB} MiB |`,
  ].join("\n");
}

export const auditSuite = {
  name: "audit",
  description: "audit verify entries/s (target ≥ 2,000) and audit seal heads/s with its peak RSS",
  options: {
    chains: { type: "string" as const, default: "10000", quick: "500", help: "chains (audited items)" },
    "entries-per-chain": { type: "string" as const, default: "4", quick: "4", help: "entries per chain" },
  },
  async run(context: BenchContext, o: Record<string, OptionValue>) {
    const result = await benchAudit(context, {
      chains: Number(o.chains),
      entriesPerChain: Number(o["entries-per-chain"]),
    });
    return { markdown: formatAuditBench(result), data: result };
  },
};
