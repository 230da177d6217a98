// `estimate` against a dataset whose true counts are known (the generator is deterministic and the
// rules are pure, so the items needing work can be counted exactly).
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  derivePatch,
  estimate,
  itemSizeBytes,
  needsLatestHistory,
  type Pricing,
  type SiteLogixTable,
} from "@sitelogix/core";
import { generateDataset, loadDataset, createTestTables, runCli, type TestTables } from "@sitelogix/testkit";

const pricing = JSON.parse(readFileSync(new URL("../packages/core/pricing.json", import.meta.url), "utf8")) as Pricing;
const TABLES: SiteLogixTable[] = ["reports", "personnel", "vendors", "constraints"];
let t: TestTables;
const truth: Record<string, number> = {};

beforeAll(async () => {
  t = await createTestTables("legacy");
  const rows = [...generateDataset({ items: 3000, violations: true })];
  await loadDataset(t.clients.doc, t.names, rows);
  // The true count: the rules over every item, with each person's real latest HISTORY# date.
  const latest = new Map<string, string>();
  for (const { table, item } of rows) {
    if (table === "personnel" && String(item.SK).startsWith("HISTORY#")) {
      const pk = String(item.PK);
      if (!latest.has(pk) || String(item.reportDate) > latest.get(pk)!) latest.set(pk, String(item.reportDate));
    }
  }
  for (const { table, item } of rows) {
    const history = needsLatestHistory(table, item) ? latest.get(String(item.PK)) : undefined;
    if (
      derivePatch(table, item, { mode: "sweep", ...(history ? { latestHistoryReportDate: history } : {}) }).set.length >
      0
    )
      truth[table] = (truth[table] ?? 0) + 1;
  }
}, 180_000);
afterAll(async () => {
  await t?.dispose();
});

describe("estimate", () => {
  it("estimates the items needing work within 10% of the true count, per table", async () => {
    const result = await estimate(
      {
        dynamodb: t.clients.dynamodb,
        doc: t.clients.doc,
        names: t.names,
        tables: TABLES,
        sampleSize: 400,
        writesPerDay: 20_000,
      },
      pricing,
    );
    for (const table of result.tables) {
      const actual = truth[table.table]!;
      expect(actual, table.table).toBeGreaterThan(0);
      expect(
        Math.abs(table.needsWork - actual) / actual,
        `${table.table}: estimated ${table.needsWork}, true ${actual}`,
      ).toBeLessThanOrEqual(0.1);
      expect(table.sample.items).toBeGreaterThanOrEqual(300);
      // Every item written costs at least one write unit.
      expect(table.sweep.writeUnits).toBeGreaterThanOrEqual(table.needsWork);
    }
  });

  it("prices one-time and monthly costs and names what dominates against the budget", async () => {
    const result = await estimate(
      {
        dynamodb: t.clients.dynamodb,
        doc: t.clients.doc,
        names: t.names,
        tables: TABLES,
        sampleSize: 200,
        writesPerDay: 50_000,
      },
      pricing,
    );
    expect(result.oneTime.map((l) => l.item)).toEqual(["sweep", "verify"]);
    expect(result.oneTime[0]!.onDemand).toBeGreaterThanOrEqual(0);
    const audit = result.monthly!.find((l) => l.item === "audit writes")!;
    const normalizer = result.monthly!.find((l) => l.item === "normalizer writes")!;
    // Each audit entry is written to the table and both its GSIs: it costs more than the normalizer's copy.
    expect(audit.onDemand).toBeGreaterThan(normalizer.onDemand);
    expect(result.budget).toMatchObject({ perMonth: 150, dominant: "audit writes" });
    const perDay = result.tables.find((x) => x.table === "reports")!.perDay!;
    expect(perDay.auditEntries).toBeGreaterThan(50_000);
    // Prices scale linearly with the write rate.
    const double = await estimate(
      {
        dynamodb: t.clients.dynamodb,
        doc: t.clients.doc,
        names: t.names,
        tables: ["reports"],
        sampleSize: 200,
        writesPerDay: 100_000,
      },
      pricing,
    );
    const single = await estimate(
      {
        dynamodb: t.clients.dynamodb,
        doc: t.clients.doc,
        names: t.names,
        tables: ["reports"],
        sampleSize: 200,
        writesPerDay: 50_000,
      },
      pricing,
    );
    expect(double.monthlyTotal!.onDemand).toBeCloseTo(single.monthlyTotal!.onDemand * 2, 0);
  });

  it("measures item sizes as DynamoDB bills them", () => {
    expect(itemSizeBytes({ PK: "abc", n: 12345 })).toBe(2 + 3 + 1 + 4);
    expect(itemSizeBytes({ s: "ü" })).toBe(1 + 2);
  });

  it("the CLI prints JSON, and without a write rate says the monthly cost is unknown", async () => {
    const run = await runCli(["estimate", "--table", "vendors", "--sample", "100", "--json"], {
      SITELOGIX_TABLE_PREFIX: t.prefix,
    });
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.monthly).toBeUndefined();
    expect(out.tables[0].writeRate).toMatchObject({ source: "unknown" });
    expect(out.tables[0].writeRate.note).toMatch(/--writes-per-day/);
    const human = await runCli(["estimate", "--table", "vendors", "--sample", "100", "--writes-per-day", "1000"], {
      SITELOGIX_TABLE_PREFIX: t.prefix,
    });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/budget \$150\.00\/month: within on-demand; audit writes dominate/);
  });

  it("with --max-wcu, says how long the sweep takes at that budget and how to run it", async () => {
    const env = { SITELOGIX_TABLE_PREFIX: t.prefix };
    const json = await runCli(["estimate", "--table", "vendors", "--sample", "100", "--max-wcu", "50", "--json"], env);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout);
    const table = out.tables[0];
    // The same write units as the estimate, at 50 units/s.
    expect(out.capacity.vendors.writeUnits).toBe(table.sweep.writeUnits);
    expect(out.capacity.vendors.hours).toBeCloseTo(table.sweep.writeUnits / 50 / 3600, 1);
    expect(out.capacity.vendors.workers).toBe(1);
    const human = await runCli(["estimate", "--table", "vendors", "--sample", "100", "--max-wcu", "50"], env);
    expect(human.stdout).toMatch(
      /sweep at 50 WCU\/s: ~[\d.]+ h, one process \(sitelogix-migrate sweep\), \$[\d.]+ on-demand/,
    );
  });
});
