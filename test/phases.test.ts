// The migration phases in core: each one's check, precondition and rollback, and the one plan the
// deploy, `status` and the rehearsal share.
import type { TableDescription } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contractPhase,
  DeployRefusedError,
  expandPhase,
  gsisIn,
  indexPhase,
  type LiveTables,
  liveTablesOf,
  MIGRATION_PHASES,
  planDeploy,
  tablePhase,
  targetGsis,
} from "@sitelogix/core";
import { awsLiveTables } from "../stacks/deploy-plan.js";
import { createTestTables, type TestTables } from "@sitelogix/testkit";

/** A personnel description with these GSIs in these states. */
const personnel = (gsis: Record<string, string>): TableDescription => ({
  TableName: "sitelogix-personnel",
  TableStatus: "ACTIVE",
  StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
  GlobalSecondaryIndexes: Object.entries(gsis).map(([IndexName, IndexStatus]) => ({
    IndexName,
    IndexStatus: IndexStatus as "ACTIVE",
  })),
});
const allActive = (names: string[]) => Object.fromEntries(names.map((n) => [n, "ACTIVE"]));
const legacyGsis = gsisIn("personnel", "legacy").map((g) => g.name);
const indexGsis = gsisIn("personnel", "index").map((g) => g.name);
const target = targetGsis("personnel").map((g) => g.name);

describe("each phase's check says what is left of it", () => {
  it("index is done only when every target GSI is ACTIVE; contract only when the retiring ones are gone", () => {
    const building = personnel({ ...allActive(legacyGsis), "GSI2-StatusIndex": "CREATING" });
    expect(indexPhase.check("personnel", building)).toEqual(["GSI2-StatusIndex is CREATING"]);
    expect(indexPhase.check("personnel", personnel(allActive(legacyGsis)))).toEqual(["GSI2-StatusIndex is missing"]);
    const indexed = personnel(allActive(indexGsis));
    expect(indexPhase.check("personnel", indexed)).toEqual([]);
    expect(contractPhase.check("personnel", indexed)).toEqual(["GSI2-ProjectIndex is still there (retiring)"]);
    expect(contractPhase.check("personnel", personnel(allActive(target)))).toEqual([]);
  });

  it("expand is done when the stream carries both images", () => {
    expect(expandPhase.check("personnel", personnel({}))).toEqual([]);
    expect(expandPhase.check("personnel", { ...personnel({}), StreamSpecification: { StreamEnabled: false } })).toEqual(
      ["the stream is not on with NEW_AND_OLD_IMAGES"],
    );
  });

  it("status names a table's phase from those checks", () => {
    expect(tablePhase("personnel", { description: personnel(allActive(indexGsis)) })).toBe("indexed");
    expect(tablePhase("personnel", { description: personnel(allActive(target)) })).toBe("contracted");
    expect(
      tablePhase("personnel", { description: personnel({ ...allActive(legacyGsis), "GSI2-StatusIndex": "CREATING" }) }),
    ).toBe("indexing");
  });

  it("every phase says how to undo it, the index phase with the rollback command", () => {
    for (const phase of Object.values(MIGRATION_PHASES))
      expect(phase.rollback("personnel", "sitelogix-personnel").length).toBeGreaterThan(0);
    expect(indexPhase.rollback("personnel", "sitelogix-personnel")[0]).toMatch(
      /^sitelogix-migrate rollback index --table personnel /,
    );
  });
});

describe("preconditions", () => {
  const live = (allowed: boolean): LiveTables => ({
    describe: async () => undefined,
    keyManager: async () => "AWS",
    indexGate: async (table) => ({ table, allowed, reasons: allowed ? [] : ["no verify result is recorded"] }),
    close: () => {},
  });
  const table = (described: TableDescription, allowed = true) => ({
    table: "personnel" as const,
    tableName: "sitelogix-personnel",
    described,
    live: live(allowed),
  });
  const drop = [{ table: "personnel" as const, action: "delete" as const, index: "GSI2-ProjectIndex" }];
  const build = [{ table: "personnel" as const, action: "create" as const, index: "GSI2-StatusIndex" }];

  it("contract refuses to drop a retiring GSI while a target GSI is not ACTIVE", async () => {
    const building = personnel({ ...allActive(legacyGsis), "GSI2-StatusIndex": "CREATING" });
    expect(await contractPhase.precondition(table(building), drop)).toEqual([
      "sitelogix-personnel: the index phase has not finished (GSI2-StatusIndex is CREATING); deploy the index " +
        "phase first",
    ]);
    expect(await contractPhase.precondition(table(personnel(allActive(indexGsis))), drop)).toEqual([]);
  });

  it(
    "index refuses behind a closed gate and while another GSI is changing, " +
      "and asks nothing when it builds nothing",
    async () => {
      const busy = personnel({ ...allActive(legacyGsis), "GSI1-ProjectIndex": "UPDATING" });
      expect(await indexPhase.precondition(table(busy, false), build)).toEqual([
        "sitelogix-personnel: GSI GSI1-ProjectIndex is UPDATING; wait until it is ACTIVE",
        "sitelogix-personnel: the index gate is closed, so GSI2-StatusIndex cannot be built: no verify result is " +
          "recorded",
      ]);
      expect(await indexPhase.precondition(table(busy, false), [])).toEqual([]);
    },
  );
});

describe("the rehearsal's plan is the deploy's", () => {
  let t: TestTables;
  beforeAll(async () => {
    t = await createTestTables("legacy");
  });
  afterAll(() => t.dispose());

  const problems = (live: LiveTables, only?: ("reports" | "personnel")[]) =>
    planDeploy({ phase: "index", names: t.names, adopt: false, live, ...(only ? { only } : {}) }).then(
      () => [] as string[],
      (err: unknown) => {
        expect(err).toBeInstanceOf(DeployRefusedError);
        return (err as DeployRefusedError).problems;
      },
    );

  it(
    "core's live tables (the rehearsal) and the deployer's (stacks) " + "refuse the same index phase, word for word",
    async () => {
      const rehearsal = await problems(liveTablesOf(t.names, t.clients));
      // awsLiveTables closes the clients it is given: give it its own.
      const { createClients } = await import("@sitelogix/core");
      const deployer = await problems(awsLiveTables(t.names, createClients()));
      expect(rehearsal.length).toBe(4);
      expect(rehearsal).toEqual(deployer);
      expect(await problems(liveTablesOf(t.names, t.clients), ["personnel"])).toEqual(
        rehearsal.filter((p) => p.startsWith(`${t.names.personnel}:`)),
      );
    },
  );
});
