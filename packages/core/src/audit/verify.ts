// Verification of the whole trail in one parallel scan of the audit table: the items of each chain
// arrive together in sort-key order and are checked as they come (verify-chain.ts), one chain's
// state at a time. Against the signed digests (read first, their signatures and links checked):
// each chain must pass through the point its latest digest sealed, and no chain a digest sealed may
// be gone. Entries after the latest digest are reported as unsealed (count, age), not as tampering.
import { paginateScan } from "@aws-sdk/client-dynamodb";
import type { DigestStore } from "./digest-store.js";
import { pages, type AuditTable } from "./store.js";
import { sealedPoints, type SealedPoints } from "./verify-digests.js";
import { ChainCheck, type ChainProblem, type ChainTally } from "./verify-chain.js";
import type { Retention } from "./retention.js";

export type { ChainProblem } from "./verify-chain.js";

export interface VerifyReport {
  intact: boolean;
  chains: number;
  entries: number;
  /** Entries that were missing because their retention had passed (not a problem). */
  expired: number;
  problems: ChainProblem[];
  /** The digests checked: how many, the latest, and the end of the time it seals. */
  digests: { count: number; latest: string | null; sealedTo: string | null };
  /** Entries no digest covers yet: not tampering, but not protected against an insider either. */
  unsealed: { entries: number; oldestRecordedAt: string | null; ageSeconds: number | null };
}

export interface VerifyOptions {
  /** Only the chains of this table (logical name). */
  table?: string;
  /** Parallel scan segments. */
  segments?: number;
  onProblem?: (p: ChainProblem) => void;
  /** The digests and the public key that verifies them; without, chains are checked on their own. */
  digests?: { store: DigestStore; publicKeyPem: () => Promise<string> };
  /** The retention in force: an entry expiring earlier than it allows is reported. */
  retention?: Retention;
}

const MAX_PROBLEMS = 10_000;

/** A report with nothing found yet, and how a finding goes into it (kept up to MAX_PROBLEMS). */
export function emptyReport(onProblem?: (p: ChainProblem) => void) {
  const report: VerifyReport = {
    intact: true,
    chains: 0,
    entries: 0,
    expired: 0,
    problems: [],
    digests: { count: 0, latest: null, sealedTo: null },
    unsealed: { entries: 0, oldestRecordedAt: null, ageSeconds: null },
  };
  const problem = (p: ChainProblem) => {
    report.intact = false;
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
    onProblem?.(p);
  };
  return { report, problem };
}

/** Checks every chain (of one table, or all) and, when given, the digests and each chain against them. */
export async function verifyTrail(
  audit: AuditTable,
  now: () => Date,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const { report, problem } = emptyReport(options.onProblem);
  const sealed: SealedPoints = options.digests
    ? await sealedPoints(options.digests.store, options.digests.publicKeyPem, audit.tableName, problem)
    : { points: new Map(), count: 0, latest: null, sealedTo: null };
  report.digests = { count: sealed.count, latest: sealed.latest, sealedTo: sealed.sealedTo };

  const nowDate = now();
  const nowSeconds = Math.floor(nowDate.getTime() / 1000);
  const tally: ChainTally = { entries: 0, expired: 0, unsealed: 0 };
  const checked = new Set<string>();
  const segments = options.segments ?? 4;
  const tablePrefix = options.table === undefined ? undefined : `${options.table}#`;
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      const pager = paginateScan(
        { client: audit.dynamodb },
        {
          TableName: audit.tableName,
          Segment: segment,
          TotalSegments: segments,
          ConsistentRead: true,
          ...(tablePrefix
            ? {
                FilterExpression: "begins_with(PK, :table)",
                ExpressionAttributeValues: { ":table": { S: tablePrefix } },
              }
            : {}),
        },
      );
      let chain: ChainCheck | undefined;
      const finish = () => {
        if (!chain) return;
        chain.finish();
        report.chains++;
      };
      for await (const item of pages(pager)) {
        const pk = item.PK?.S ?? "";
        if (chain?.entity === pk) {
          chain.add(item);
          continue;
        }
        finish();
        // A scan returns an item collection whole and in sort-key order; a chain seen twice would be checked wrongly.
        if (checked.has(pk)) throw new Error(`the scan returned the items of ${pk} apart: cannot verify in one pass`);
        checked.add(pk);
        const point = sealed.points.get(pk);
        sealed.points.delete(pk);
        chain = new ChainCheck(pk, point, nowSeconds, options.retention, tally, problem);
        chain.add(item);
      }
      finish();
    }),
  );
  // Chains a digest sealed that no longer exist at all (head and every entry deleted).
  for (const [entity, point] of sealed.points) {
    if (tablePrefix && !entity.startsWith(tablePrefix)) continue;
    const table = entity.slice(0, entity.indexOf("#"));
    problem({
      table,
      keys: point.keys,
      position: point.count,
      digest: point.digest,
      problem: `chain deleted (head and every entry): ${point.digest} sealed ${point.count} entries of it`,
    });
  }
  report.entries = tally.entries;
  report.expired = tally.expired;
  report.unsealed = {
    entries: tally.unsealed,
    oldestRecordedAt: tally.oldestUnsealed ?? null,
    ageSeconds:
      tally.oldestUnsealed === undefined
        ? null
        : Math.max(0, Math.round((nowDate.getTime() - Date.parse(tally.oldestUnsealed)) / 1000)),
  };
  return report;
}
