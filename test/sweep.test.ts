// The sweep on DynamoDB Local: dry run, invariants 1, 2, 3 and 5 of DESIGN.md section 5 with the
// application writing concurrently, and pagination over 1 MB pages of 100 KB items.
import { DeleteCommand, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createClients,
  destroyClients,
  MIGRATOR_MARKER,
  derivedAttributes,
  tablesWithRules,
  targetAttributes,
  verifyTable,
  type Item,
  type SiteLogixTable,
  type SweepReport,
} from "@sitelogix/core";
import {
  ApplicationTraffic,
  generateDataset,
  loadDataset,
  type SampleRow,
  createTestTables,
  lastApplicationWrites,
  type TestTables,
  interceptUpdates,
  keyString,
  ledgerOf,
  pendingWork,
  scanAll,
  sweepTable,
} from "@sitelogix/testkit";

const LEGACY_TABLES = ["reports", "personnel", "vendors", "constraints"] as const;
const PII = ["fullName", "email", "phone", "contactEmail", "companyName"];

let t: TestTables;
let rows: SampleRow[];
const original = new Map<string, Item>();
const get = async (table: SiteLogixTable, key: { PK: string; SK: string }) =>
  (await t.clients.doc.send(new GetCommand({ TableName: t.names[table], Key: key, ConsistentRead: true }))).Item;

beforeAll(async () => {
  t = await createTestTables("legacy");
  rows = [...generateDataset({ items: 1200, seed: 11 })];
  await loadDataset(t.clients.doc, t.names, rows);
  for (const r of rows) original.set(`${r.table}|${keyString(r.item)}`, r.item);
});
afterAll(async () => {
  await t?.dispose();
});

describe("dry run", () => {
  it(
    "writes nothing (tables and ledger unchanged) and reports counts and diffs with keys and " + "attribute names only",
    async () => {
      const before = await Promise.all(LEGACY_TABLES.map((table) => scanAll(t.clients.doc, t.names[table])));
      const reports: SweepReport[] = [];
      for (const table of LEGACY_TABLES) reports.push(await sweepTable(t, table, { dryRun: true }));
      const after = await Promise.all(LEGACY_TABLES.map((table) => scanAll(t.clients.doc, t.names[table])));
      expect(after).toEqual(before);
      for (const table of LEGACY_TABLES) expect(await ledgerOf(t).latestSweep(table)).toBeUndefined();

      for (const [i, table] of LEGACY_TABLES.entries()) {
        const report = reports[i]!;
        let needsWork = 0;
        for (const item of before[i]!)
          if ((await pendingWork(t.clients.doc, table, t.names[table], item)).length > 0) needsWork++;
        expect(report).toMatchObject({ dryRun: true, status: "finished" });
        expect(report.sweepId).toBeUndefined();
        expect(report.counts).toMatchObject({ scanned: before[i]!.length, needsWork, applied: 0, consumedWcu: 0 });
        expect(report.counts.scanned).toBe(
          report.counts.outOfScope + report.counts.alreadyNormalized + report.counts.needsWork,
        );
        expect(report.samples.diffs.length).toBe(Math.min(20, needsWork));
        for (const diff of report.samples.diffs) {
          expect(Object.keys(diff).sort()).toEqual(["key", "set"]);
          for (const a of diff.set) {
            expect(Object.keys(a).sort()).toEqual(["attribute", "from", "was"]);
            expect(targetAttributes(table)).toContain(a.attribute);
          }
          const item = original.get(`${table}|${keyString(diff.key)}`)!;
          const text = JSON.stringify(diff);
          for (const attribute of PII)
            if (typeof item[attribute] === "string") expect(text).not.toContain(item[attribute]);
        }
      }
    },
  );
});

describe("under live application traffic", () => {
  const raced = { updated: new Map<string, Item>(), deleted: new Map<string, Item>() };
  const reports = new Map<SiteLogixTable, SweepReport>();
  let traffic: ApplicationTraffic;

  beforeAll(async () => {
    // Reports without a pre-existing project_id copy: a stale copy written by the sweep would show.
    const candidates = rows
      .filter((r) => r.table === "reports" && r.item.project_id === undefined && r.item.status === undefined)
      .map((r) => r.item);
    for (const item of candidates.slice(0, 5)) raced.updated.set(item.PK as string, item);
    for (const item of candidates.slice(5, 10)) raced.deleted.set(item.PK as string, item);

    // Between the sweep's read and its write of a raced item, the application updates or deletes it.
    const sweepClients = createClients();
    const interleaved = new Map<string, () => Promise<void>>();
    for (const [pk, item] of raced.updated) {
      interleaved.set(pk, async () => {
        await t.clients.doc.send(
          new UpdateCommand({
            TableName: t.names.reports,
            Key: { PK: pk, SK: item.SK },
            UpdateExpression: "SET projectId = :p, updatedAt = :u, lastModifiedBy = :by ADD version :one",
            ConditionExpression: "version = :v",
            ExpressionAttributeValues: {
              ":p": "proj_raced",
              ":u": "2030-01-01T00:00:00.000Z",
              ":by": "app_race",
              ":one": 1,
              ":v": item.version,
            },
          }),
        );
      });
    }
    for (const [pk, item] of raced.deleted) {
      interleaved.set(pk, async () => {
        await t.clients.doc.send(new DeleteCommand({ TableName: t.names.reports, Key: { PK: pk, SK: item.SK } }));
      });
    }
    interceptUpdates(sweepClients.dynamodb, interleaved);

    traffic = new ApplicationTraffic(t.clients.doc, t.names, {
      opsPerSecond: 40,
      tables: ["reports", "constraints"],
      journal: true,
      derivedWrites: true,
      seed: 5,
    });
    for (const r of rows) {
      if (
        (r.table === "reports" || r.table === "constraints") &&
        !raced.updated.has(r.item.PK as string) &&
        !raced.deleted.has(r.item.PK as string)
      ) {
        traffic.know(r.table, { PK: r.item.PK as string, SK: r.item.SK as string });
      }
    }
    traffic.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const results = await Promise.all(LEGACY_TABLES.map((table) => sweepTable(t, table, { clients: sweepClients })));
      for (const [i, table] of LEGACY_TABLES.entries()) reports.set(table, results[i]!);
    } finally {
      await traffic.stop();
      destroyClients(sweepClients);
    }
    expect(interleaved.size).toBe(0);
    expect(traffic.journal.length).toBeGreaterThan(20);
  });

  /** Keys the application (or a raced write) wrote during the sweep. */
  const touched = () => {
    const keys = new Set(traffic.journal.map((w) => `${w.table}|${keyString(w.key)}`));
    for (const item of [...raced.updated.values(), ...raced.deleted.values()]) keys.add(`reports|${keyString(item)}`);
    return keys;
  };

  it(
    "invariant 1: no lost update — every application write survives, and one landing between the " +
      "sweep's read and write wins",
    async () => {
      for (const [pk, item] of raced.updated) {
        const now = await get("reports", { PK: pk, SK: item.SK as string });
        expect(now).toMatchObject({
          projectId: "proj_raced",
          lastModifiedBy: "app_race",
          updatedAt: "2030-01-01T00:00:00.000Z",
          version: (item.version as number) + 1,
        });
        // The sweep's copy of the old projectId was refused, not written.
        expect(now?.project_id).toBeUndefined();
      }
      expect(reports.get("reports")!.counts.conflicts).toBeGreaterThanOrEqual(raced.updated.size);

      // The newest journaled write of every item the application kept is what the item holds.
      const newest = new Map<string, (typeof traffic.journal)[number]>();
      const deleted = new Set<string>();
      for (const w of traffic.journal) {
        const id = `${w.table}|${keyString(w.key)}`;
        if (w.op === "delete") deleted.add(id);
        else if ((newest.get(id)?.version ?? -1) < (w.version ?? 0)) newest.set(id, w);
      }
      let checked = 0;
      for (const [id, w] of newest) {
        if (deleted.has(id)) continue;
        const now = await get(w.table, w.key);
        expect(now, id).toBeDefined();
        for (const [attribute, value] of Object.entries(w.attributes ?? {})) {
          // An empty string counts as absent: the rules may fill a target the application left empty.
          if (value === "" && targetAttributes(w.table).includes(attribute)) continue;
          expect(now?.[attribute], `${id} ${attribute}`).toEqual(value);
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(10);

      // Every attribute keeps the value the application wrote last, derived ones (status, timestamp) included.
      let derived = 0;
      for (const [id, { table, key, values }] of lastApplicationWrites(traffic.journal)) {
        const now = await get(table, key);
        for (const [attribute, value] of Object.entries(values)) {
          if (value === "" && targetAttributes(table).includes(attribute)) continue;
          if (derivedAttributes(table).includes(attribute)) derived++;
          expect(now?.[attribute], `${id} ${attribute}`).toEqual(value);
        }
      }
      expect(derived).toBeGreaterThan(0);

      // The application's own status values were never replaced by the default (where the traffic left them).
      const skip = touched();
      for (const r of rows.filter(
        (r) => r.table === "reports" && r.item.status === "draft" && !skip.has(`reports|${keyString(r.item)}`),
      )) {
        const now = await get("reports", { PK: r.item.PK as string, SK: r.item.SK as string });
        if (now) expect(now.status).toBe("draft");
      }
    },
  );

  it(
    "invariant 1: no lost update — on legacy items the sweep changes no derived value the " +
      "application wrote (status, timestamp, dateLastSeen, vendor_type)",
    async () => {
      const skip = touched();
      const kept = new Map<string, number>();
      for (const table of LEGACY_TABLES) {
        const derived = derivedAttributes(table);
        for (const item of await scanAll(t.clients.doc, t.names[table])) {
          const id = `${table}|${keyString(item)}`;
          const before = original.get(id);
          if (!before || skip.has(id)) continue;
          for (const attribute of derived) {
            const value = before[attribute];
            // vendor_type follows vendorType while it is present (a mirror then, not a derived value).
            if (typeof value !== "string" || value === "" || (attribute === "vendor_type" && before.vendorType))
              continue;
            expect(item[attribute], `${id} ${attribute}`).toBe(value);
            kept.set(`${table}.${attribute}`, (kept.get(`${table}.${attribute}`) ?? 0) + 1);
          }
        }
      }
      // The dataset plants each kind: an application status, timestamp, dateLastSeen and vendor_type.
      for (const kind of [
        "reports.status",
        "reports.timestamp",
        "personnel.status",
        "personnel.dateLastSeen",
        "vendors.vendor_type",
        "vendors.dateLastSeen",
      ]) {
        expect(kept.get(kind), kind).toBeGreaterThan(0);
      }
    },
  );

  it(
    "invariant 2: no resurrection — an item deleted between the sweep's read and write stays " +
      "deleted, as does every item the application deleted",
    async () => {
      for (const [pk, item] of raced.deleted)
        expect(await get("reports", { PK: pk, SK: item.SK as string })).toBeUndefined();
      expect(reports.get("reports")!.counts.gone).toBeGreaterThanOrEqual(raced.deleted.size);
      const deletes = traffic.journal.filter((w) => w.op === "delete");
      expect(deletes.length).toBeGreaterThan(0);
      for (const w of deletes) expect(await get(w.table, w.key), keyString(w.key)).toBeUndefined();
    },
  );

  it(
    "invariant 3: convergence — one pass normalizes every item the application did not write " +
      "meanwhile; after the traffic, another pass leaves verify without gaps",
    async () => {
      const skip = touched();
      let untouched = 0;
      for (const table of LEGACY_TABLES) {
        for (const item of await scanAll(t.clients.doc, t.names[table])) {
          if (skip.has(`${table}|${keyString(item)}`)) continue;
          expect(await pendingWork(t.clients.doc, table, t.names[table], item), `${table} ${keyString(item)}`).toEqual(
            [],
          );
          untouched++;
        }
      }
      expect(untouched).toBeGreaterThan(rows.length / 2);

      // Items the application wrote after the sweep read them are the normalizer's job; without it, a second pass.
      for (const table of LEGACY_TABLES) await sweepTable(t, table);
      for (const table of tablesWithRules()) {
        const v = await verifyTable({ doc: t.clients.doc, table, tableName: t.names[table] });
        expect(v.gaps, table).toBe(0);
        // What remains are the generator's constraints with an empty project_id and no projectId to copy.
        for (const index of v.indexes)
          for (const s of index.sampleViolations)
            expect(s.violations).toEqual([expect.objectContaining({ attribute: "project_id", problem: "key-empty" })]);
      }
    },
  );

  it(
    "invariant 5: business fields untouched — only target attributes and the migrator's markers " +
      "differ from what the application wrote",
    async () => {
      const skip = touched();
      const markers = Object.values(MIGRATOR_MARKER) as string[];
      let compared = 0;
      for (const table of LEGACY_TABLES) {
        const targets = targetAttributes(table);
        for (const item of await scanAll(t.clients.doc, t.names[table])) {
          const id = `${table}|${keyString(item)}`;
          const before = original.get(id);
          if (!before || skip.has(id)) continue;
          for (const [attribute, value] of Object.entries(before))
            if (!targets.includes(attribute)) expect(item[attribute], `${id} ${attribute}`).toEqual(value);
          for (const attribute of Object.keys(item))
            if (!(attribute in before)) expect([...targets, ...markers], `${id} ${attribute}`).toContain(attribute);
          compared++;
        }
      }
      expect(compared).toBeGreaterThan(rows.length / 2);
    },
  );

  it("counts add up and the run is recorded finished with its counts and times", async () => {
    for (const table of LEGACY_TABLES) {
      const c = reports.get(table)!.counts;
      expect(c.scanned).toBe(c.outOfScope + c.alreadyNormalized + c.needsWork);
      expect(c.needsWork).toBe(c.applied + c.conflicts + c.gone + c.rejected);
    }
    const run = await ledgerOf(t).latestSweep("reports");
    expect(run).toMatchObject({ status: "finished", totalSegments: 4 });
    expect(run!.finishedAt! >= run!.startedAt).toBe(true);
    expect(run!.counts!.scanned).toBeGreaterThan(0);
  });
});

describe("pagination", () => {
  let big: TestTables;
  beforeAll(async () => {
    big = await createTestTables("legacy");
  });
  afterAll(async () => {
    await big?.dispose();
  });

  it("sweeps every 1 MB page of 100 KB+ items with one write per item, and none on a second pass", async () => {
    const items = [...generateDataset({ items: 120, seed: 3, transcriptBytes: 110_000 })].filter(
      (r) => r.table === "reports",
    );
    expect(items.length).toBeGreaterThanOrEqual(36);
    await loadDataset(big.clients.doc, big.names, items, { inFlight: 2 });

    const first = await sweepTable(big, "reports", { segments: 2 });
    expect(first.counts).toMatchObject({ scanned: items.length, applied: items.length });
    const run = (await ledgerOf(big).latestSweep("reports"))!;
    const checkpoints = await ledgerOf(big).checkpoints("reports", run.sweepId);
    // About 9 items per 1 MB page: several pages per segment.
    expect(checkpoints.reduce((n, c) => n + c.pages, 0)).toBeGreaterThanOrEqual(4);
    expect(checkpoints.every((c) => c.done)).toBe(true);
    for (const item of await scanAll(big.clients.doc, big.names.reports)) {
      expect(Number(item[MIGRATOR_MARKER.rev])).toBe(1);
      expect(await pendingWork(big.clients.doc, "reports", big.names.reports, item)).toEqual([]);
    }

    const second = await sweepTable(big, "reports", { segments: 2 });
    expect(second.counts).toMatchObject({
      scanned: items.length,
      alreadyNormalized: items.length,
      applied: 0,
      consumedWcu: 0,
    });
  });
});
