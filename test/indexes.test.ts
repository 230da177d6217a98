// The index phase on DynamoDB Local: one GSI change per table update, each awaited, and the check
// that an index holds exactly the items whose key attributes are non-empty strings.
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyIndexPhase,
  applyPatch,
  checkIndex,
  derivePatch,
  indexChanges,
  PHASES,
  SITELOGIX_TABLES,
  targetGsis,
  gsisIn,
  existsIn,
  TABLES,
  ACCESS_PATTERNS,
  runAccessPattern,
  type IndexChange,
} from "@sitelogix/core";
import { generateDataset, loadDataset, createTestTables, type TestTables } from "@sitelogix/testkit";

describe("indexChanges", () => {
  it("never asks for two changes of one table in one update, and orders creations first", () => {
    for (const table of SITELOGIX_TABLES) {
      for (let i = 1; i < PHASES.length; i++) {
        // A table created in a phase gets all its GSIs with CreateTable: that is not an update.
        if (!existsIn(PHASES[i - 1]!, TABLES[table].from)) continue;
        const present = gsisIn(table, PHASES[i - 1]!).map((g) => g.name);
        const changes = indexChanges(table, present, PHASES[i]!);
        // Each change is its own table update; between consecutive phases a table changes at most one index.
        expect(changes.length, `${table} ${PHASES[i - 1]}→${PHASES[i]}`).toBeLessThanOrEqual(1);
      }
    }
    expect(indexChanges("personnel", ["GSI1-NameIndex"], "contract")).toEqual([
      { table: "personnel", action: "create", index: "GSI2-StatusIndex" },
    ]);
    expect(indexChanges("personnel", ["GSI1-NameIndex", "GSI2-ProjectIndex", "GSI2-StatusIndex"], "contract")).toEqual([
      { table: "personnel", action: "delete", index: "GSI2-ProjectIndex" },
    ]);
  });
});

describe("index phase on DynamoDB Local", () => {
  let t: TestTables;
  beforeAll(async () => {
    t = await createTestTables("legacy");
    const rows = [...generateDataset({ items: 600 })];
    await loadDataset(t.clients.doc, t.names, rows);
    // Normalize every item as sweep + normalizer would (history context left out: not needed here).
    for (const { table, item } of rows)
      await applyPatch(t.clients.doc, t.names[table], derivePatch(table, item, { mode: "sweep" }), "sweep");
    // A number in a future string key: DynamoDB Local indexes it (AWS would skip it), the check must notice.
    await t.clients.doc.send(
      new PutCommand({
        TableName: t.names.reports,
        Item: { PK: "REPORT#odd", SK: "METADATA", status: "published", timestamp: 20251101 },
      }),
    );
  }, 180_000);
  afterAll(async () => {
    await t?.dispose();
  });

  it(
    "creates the target GSIs one update at a time; " +
      "each index holds exactly what it should, and an oddity is named",
    async () => {
      const seen: IndexChange[] = [];
      for (const table of ["reports", "personnel", "vendors", "constraints"] as const)
        await applyIndexPhase(t.clients.dynamodb, t.names, table, "index", (c) => seen.push(c));
      expect(seen.map((c) => `${c.action} ${c.table} ${c.index}`)).toEqual([
        "create reports GSI3-StatusIndex",
        "create personnel GSI2-StatusIndex",
        "create vendors GSI2-TypeIndex",
        "create constraints GSI3-ProjectDateIndex",
      ]);
      for (const table of ["reports", "personnel", "vendors", "constraints"] as const) {
        for (const gsi of targetGsis(table)) {
          const check = await checkIndex(t.clients.doc, t.names, table, gsi);
          if (gsi.name === "GSI3-StatusIndex") {
            expect(check).toMatchObject({ ok: false, missing: [], unexpected: ["REPORT#odd / METADATA"] });
            continue;
          }
          expect(check, `${table} ${gsi.name}`).toMatchObject({ ok: true, missing: [], unexpected: [] });
          expect(check.indexed).toBe(check.expected);
        }
      }
      const reports = await checkIndex(
        t.clients.doc,
        t.names,
        "reports",
        targetGsis("reports").find((g) => g.name === "GSI3-StatusIndex")!,
      );
      expect(reports.expected).toBeGreaterThan(100);
    },
  );

  it("the seven core access patterns run on the new indexes, in key order", async () => {
    const results = await Promise.all(ACCESS_PATTERNS.map((p) => runAccessPattern(t.clients.doc, t.names, p)));
    expect(results).toHaveLength(7);
    for (const r of results) expect(r, r.name).toMatchObject({ ok: true });
    expect(results.every((r) => r.items > 0)).toBe(true);
  });

  it(
    "the date-range pattern queries the year of the data it samples, " +
      "not a fixed one (live writes are dated today)",
    async () => {
      const tables = await createTestTables("target");
      try {
        const key = { PK: "REPORT#later", SK: "METADATA" };
        await tables.clients.doc.send(
          new PutCommand({
            TableName: tables.names.reports,
            Item: { ...key, project_id: "proj_999", report_date: "2031-03-04" },
          }),
        );
        const pattern = ACCESS_PATTERNS.find((p) => p.index === "GSI1-ProjectIndex")!;
        expect(await runAccessPattern(tables.clients.doc, tables.names, pattern)).toMatchObject({
          ok: true,
          items: 1,
          value: "proj_999",
        });
      } finally {
        await tables.dispose();
      }
    },
  );

  it("the contract phase drops personnel's GSI2-ProjectIndex, and nothing else", async () => {
    const changes = await applyIndexPhase(t.clients.dynamodb, t.names, "personnel", "contract");
    expect(changes).toEqual([{ table: "personnel", action: "delete", index: "GSI2-ProjectIndex" }]);
    const table = (await t.clients.dynamodb.send(new DescribeTableCommand({ TableName: t.names.personnel }))).Table!;
    expect(table.GlobalSecondaryIndexes!.map((g) => g.IndexName).sort()).toEqual([
      "GSI1-NameIndex",
      "GSI2-StatusIndex",
    ]);
  });
});
