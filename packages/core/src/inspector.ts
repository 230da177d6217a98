// Reading tables for the migration: parallel scan segments that resume from a checkpoint and read
// only the attributes the rules need, the rule context of an item (a person's latest HISTORY# date),
// and the index gate: which items a target GSI should hold but cannot (gaps), and which key values
// no index can hold (violations). Nothing here writes to a SiteLogix table.
import { GetCommand, paginateScan, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { scanPatchFor } from "./rule-context.js";
import { dynamoType, ruleAttributes, type Item, type Patch, type ViolationProblem } from "./rules.js";
import { keyAttributes, TABLES, targetGsis, type SiteLogixTable } from "./schema.js";
import { sleep } from "./sleep.js";
import { ConcurrencyLimit, isThrottlingError, retryThrottled, throttleBackoffMs } from "./throttler.js";
import type { IndexCheck } from "./ledger/index.js";

/** What the sweep reads of each item: keys and the rules' sources and targets. */
export function sweepAttributes(table: SiteLogixTable): string[] {
  return [...new Set([...keyAttributes(TABLES[table]), ...ruleAttributes(table)])];
}

/** What verify reads: the sweep's attributes plus every target GSI's key attributes. */
export function verifyAttributes(table: SiteLogixTable): string[] {
  const gsiKeys = targetGsis(table).flatMap(keyAttributes);
  return [...new Set([...sweepAttributes(table), ...gsiKeys])];
}

/** A ProjectionExpression naming every attribute through a placeholder (reserved words: status, timestamp). */
export function projection(attributes: string[]): {
  ProjectionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
} {
  const names = Object.fromEntries(attributes.map((a, i) => [`#p${i}`, a]));
  return { ProjectionExpression: Object.keys(names).join(", "), ExpressionAttributeNames: names };
}

export interface ScanPage {
  items: Item[];
  /** Where the next page starts; undefined after the last page of the segment. */
  cursor?: Record<string, unknown>;
}

export interface SegmentScan {
  doc: DynamoDBDocumentClient;
  tableName: string;
  segment: number;
  totalSegments: number;
  attributes: string[];
  /** Resume after this key (a checkpoint). */
  cursor?: Record<string, unknown>;
  signal?: AbortSignal;
  onThrottle?: () => void;
}

/**
 * The pages of one parallel-scan segment (SDK paginator, 1 MB pages). The next page is requested
 * only when the caller asks for it, so a caller that finishes a page before the next holds one page
 * of this segment at a time. Throttling that outlasts the SDK's retries is retried from the last
 * page handed out.
 */
export async function* scanSegment(options: SegmentScan): AsyncGenerator<ScanPage> {
  let cursor = options.cursor;
  for (let retries = 0; ; retries++) {
    try {
      const pages = paginateScan(
        { client: options.doc },
        {
          TableName: options.tableName,
          Segment: options.segment,
          TotalSegments: options.totalSegments,
          ...projection(options.attributes),
          ...(cursor ? { ExclusiveStartKey: cursor } : {}),
        },
        { abortSignal: options.signal },
      );
      for await (const page of pages) {
        retries = 0;
        cursor = page.LastEvaluatedKey;
        yield { items: (page.Items ?? []) as Item[], ...(cursor ? { cursor } : {}) };
      }
      return;
    } catch (err) {
      // A paginator that threw is finished: a fresh one continues from the last page handed out.
      if (!isThrottlingError(err) || options.signal?.aborted) throw err;
      options.onThrottle?.();
      await sleep(throttleBackoffMs(retries), options.signal);
    }
  }
}

// --- the index gate ---

export type KeyViolationProblem = "key-not-string" | "key-empty" | ViolationProblem;

export interface IndexFinding {
  index: string;
  /** Key attributes of the index the rules would write (absent, empty or stale today). */
  gapAttributes: string[];
  violations: { attribute: string; problem: KeyViolationProblem; at: string; type: string }[];
  /** Key attributes the application owns whose value differs from the rules' derivation (informational). */
  disagreements: string[];
}

/**
 * What stands between an item and each target GSI of its table. A gap: the rules would write one of
 * the index's key attributes (the item is missing from the index, or indexed under a stale value).
 * A violation: a key attribute holds a non-string or an empty string the rules cannot fix, or a rule
 * reports a problem with a source (wrong type, unmapped value, nothing to derive a required value
 * from). Items no rule covers (a constraint without projectId) are legitimately absent. A
 * disagreement: a derived key attribute the application owns holds another value than the rules
 * would derive; the item is indexed under the application's value, so it is reported, not a gap.
 */
export function inspectItem(table: SiteLogixTable, item: Item, patch: Patch): IndexFinding[] {
  const findings: IndexFinding[] = [];
  const written = new Set(patch.set.map((a) => a.attribute));
  for (const gsi of targetGsis(table)) {
    const keys = keyAttributes(gsi);
    const finding: IndexFinding = {
      index: gsi.name,
      gapAttributes: keys.filter((k) => written.has(k)),
      violations: [],
      disagreements: keys.filter((k) => patch.disagreements.includes(k)),
    };
    for (const attribute of keys) {
      if (written.has(attribute)) continue;
      const value = item[attribute];
      if (value === undefined) continue;
      if (typeof value !== "string")
        finding.violations.push({ attribute, problem: "key-not-string", at: attribute, type: dynamoType(value) });
      else if (value === "") finding.violations.push({ attribute, problem: "key-empty", at: attribute, type: "S" });
    }
    for (const v of patch.violations) {
      // A target of the wrong type or empty is already reported above as the key attribute's problem.
      if (keys.includes(v.attribute) && v.problem !== "target-not-string" && v.problem !== "target-empty") {
        finding.violations.push({ attribute: v.attribute, problem: v.problem, at: v.at, type: v.type });
      }
    }
    if (finding.gapAttributes.length > 0 || finding.violations.length > 0 || finding.disagreements.length > 0)
      findings.push(finding);
  }
  return findings;
}

const blocks = (f: IndexFinding) => f.gapAttributes.length > 0 || f.violations.length > 0;

/** Counts per index and table, with up to `sampleLimit` sample keys per index and kind. */
class GateTally {
  readonly indexes: Map<string, IndexCheck>;
  gaps = 0;
  violations = 0;
  disagreements = 0;

  constructor(
    table: SiteLogixTable,
    private readonly sampleLimit: number,
  ) {
    this.indexes = new Map(
      targetGsis(table).map((g) => [
        g.name,
        {
          index: g.name,
          keyAttributes: keyAttributes(g),
          gaps: 0,
          violations: 0,
          disagreements: 0,
          sampleGaps: [],
          sampleViolations: [],
          sampleDisagreements: [],
        },
      ]),
    );
  }

  /** The disagreements of another tally (the scan's) in place of this one's. */
  takeDisagreements(other: GateTally): void {
    this.disagreements = other.disagreements;
    for (const [name, check] of this.indexes) {
      const from = other.indexes.get(name)!;
      check.disagreements = from.disagreements;
      check.sampleDisagreements = from.sampleDisagreements;
    }
  }

  add(key: Record<string, string>, findings: IndexFinding[]): void {
    if (findings.some((f) => f.gapAttributes.length > 0)) this.gaps++;
    if (findings.some((f) => f.violations.length > 0)) this.violations++;
    if (findings.some((f) => f.disagreements.length > 0)) this.disagreements++;
    for (const f of findings) {
      const check = this.indexes.get(f.index)!;
      if (f.gapAttributes.length > 0) {
        check.gaps++;
        if (check.sampleGaps.length < this.sampleLimit) check.sampleGaps.push({ key, attributes: f.gapAttributes });
      }
      if (f.violations.length > 0) {
        check.violations++;
        if (check.sampleViolations.length < this.sampleLimit)
          check.sampleViolations.push({ key, violations: f.violations });
      }
      if (f.disagreements.length > 0) {
        check.disagreements++;
        if (check.sampleDisagreements.length < this.sampleLimit)
          check.sampleDisagreements.push({ key, attributes: f.disagreements });
      }
    }
  }
}

export interface VerifyOptions {
  doc: DynamoDBDocumentClient;
  table: SiteLogixTable;
  tableName: string;
  segments?: number;
  /** Rule-context queries in flight (personnel: one Query per PROFILE). */
  concurrency?: number;
  sampleLimit?: number;
  /**
   * Flagged items are re-read (consistent GetItem) after the scan when there are at most this many:
   * an item caught between an application write and the normalizer's is not a gap. Above it the
   * gate is red anyway and the scan's counts stand.
   */
  recheckLimit?: number;
  signal?: AbortSignal;
  onProgress?: (scanned: number) => void;
}

export interface TableVerification {
  table: SiteLogixTable;
  tableName: string;
  /** When the scan started: every item written before it was checked. */
  at: string;
  green: boolean;
  scanned: number;
  gaps: number;
  violations: number;
  /** Items indexed under an application-owned derived value that differs from the rules (informational). */
  disagreements: number;
  /** Items re-read after the scan (0 when more were flagged than the recheck limit). */
  rechecked: number;
  durationMs: number;
  indexes: IndexCheck[];
}

/** The gate for one table: a parallel full scan, then a re-read of what it flagged. */
export async function verifyTable(options: VerifyOptions): Promise<TableVerification> {
  const { doc, table, tableName, signal } = options;
  const segments = options.segments ?? 8;
  const sampleLimit = options.sampleLimit ?? 20;
  const recheckLimit = options.recheckLimit ?? 1000;
  const started = performance.now();
  const at = new Date().toISOString();
  const attributes = verifyAttributes(table);
  const limit = new ConcurrencyLimit(options.concurrency ?? 32);
  const scanTally = new GateTally(table, sampleLimit);
  const flagged = new Map<string, Record<string, string>>();
  let overflow = false;
  let scanned = 0;

  const check = async (item: Item) => {
    const patch = await scanPatchFor(doc, table, tableName, item, signal ? { signal } : {});
    return { key: patch.key, findings: inspectItem(table, item, patch) };
  };

  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      for await (const page of scanSegment({ doc, tableName, segment, totalSegments: segments, attributes, signal })) {
        await Promise.all(
          page.items.map((item) =>
            limit.run(async () => {
              const { key, findings } = await check(item);
              if (findings.length === 0) return;
              scanTally.add(key, findings);
              // Only what blocks the gate is worth a re-read; disagreements stand as scanned.
              if (!findings.some(blocks)) return;
              if (flagged.size < recheckLimit) flagged.set(JSON.stringify(key), key);
              else overflow = true;
            }),
          ),
        );
        scanned += page.items.length;
        options.onProgress?.(scanned);
      }
    }),
  );

  let tally = scanTally;
  let rechecked = 0;
  if (!overflow && flagged.size > 0) {
    tally = new GateTally(table, sampleLimit);
    const { ProjectionExpression, ExpressionAttributeNames } = projection(attributes);
    await Promise.all(
      [...flagged.values()].map((key) =>
        limit.run(async () => {
          const out = await retryThrottled(() =>
            doc.send(
              new GetCommand({
                TableName: tableName,
                Key: key,
                ConsistentRead: true,
                ProjectionExpression,
                ExpressionAttributeNames,
              }),
              { abortSignal: signal },
            ),
          );
          rechecked++;
          if (!out.Item) return;
          const { findings } = await check(out.Item);
          const blocking = findings.filter(blocks).map((f) => ({ ...f, disagreements: [] }));
          if (blocking.length > 0) tally.add(key, blocking);
        }),
      ),
    );
    tally.takeDisagreements(scanTally);
  }

  return {
    table,
    tableName,
    at,
    green: tally.gaps === 0 && tally.violations === 0,
    scanned,
    gaps: tally.gaps,
    violations: tally.violations,
    disagreements: tally.disagreements,
    rechecked,
    durationMs: Math.round(performance.now() - started),
    indexes: [...tally.indexes.values()],
  };
}
