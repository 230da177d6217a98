// Unit tests of the normalization rules (DESIGN.md section 4): every row and its edge cases.
import { NumberValue } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import {
  derivePatch,
  derivedAttributes,
  inScope,
  needsLatestHistory,
  OWNERSHIP_ATTRIBUTE,
  ownershipHash,
  ruleAttributes,
  tablesWithRules,
  targetAttributes,
  type Item,
  type Patch,
  type RuleContext,
} from "@sitelogix/core";

const sweep: RuleContext = { mode: "sweep" };
const normalizer = (writeTime = "2025-11-20T10:00:00.000Z"): RuleContext => ({ mode: "normalizer", writeTime });

/** The patch as `{ attribute: value }` for compact assertions. */
const values = (patch: Patch) => Object.fromEntries(patch.set.map((a) => [a.attribute, a.value]));
const problems = (patch: Patch) => patch.violations.map((v) => `${v.attribute}:${v.problem}:${v.at}:${v.type}`);
/** The item as the migrator leaves it after writing `owned` (derived values with its ownership record). */
const ownedBy = (item: Item, owned: Record<string, string>): Item => ({
  ...item,
  ...owned,
  [OWNERSHIP_ATTRIBUTE]: Object.fromEntries(Object.entries(owned).map(([k, v]) => [k, ownershipHash(v)])),
});

describe("reports", () => {
  const report = {
    PK: "REPORT#r1",
    SK: "METADATA",
    projectId: "p1",
    managerId: "m1",
    reportDate: "2025-11-01",
    createdAt: "2025-11-01T08:00:00Z",
  };

  it(
    "mirrors projectId, managerId and reportDate, " +
      "derives timestamp from createdAt, and defaults status to published",
    () => {
      const patch = derivePatch("reports", report, sweep);
      expect(values(patch)).toEqual({
        project_id: "p1",
        manager_id: "m1",
        report_date: "2025-11-01",
        status: "published",
        timestamp: "2025-11-01T08:00:00Z",
      });
      expect(patch.key).toEqual({ PK: "REPORT#r1", SK: "METADATA" });
      expect(patch.violations).toEqual([]);
      expect(patch.set.find((a) => a.attribute === "project_id")?.basis).toEqual({
        kind: "mirror",
        source: "projectId",
        sourceValue: "p1",
      });
      expect(patch.set.find((a) => a.attribute === "timestamp")?.basis).toEqual({
        kind: "derived",
        source: "createdAt",
        sourceValue: "2025-11-01T08:00:00Z",
      });
      expect(patch.set.find((a) => a.attribute === "status")?.basis).toEqual({ kind: "default" });
      expect(patch.ownershipRecord).toBe(false);
    },
  );

  it("is empty for a normalized item (no write, no loop)", () => {
    const normalized = {
      ...report,
      project_id: "p1",
      manager_id: "m1",
      report_date: "2025-11-01",
      status: "published",
      timestamp: "2025-11-01T08:00:00Z",
    };
    expect(derivePatch("reports", normalized, sweep).set).toEqual([]);
    expect(derivePatch("reports", normalized, normalizer()).set).toEqual([]);
  });

  it("never overwrites a status the application set", () => {
    const patch = derivePatch("reports", { ...report, status: "draft" }, sweep);
    expect(values(patch).status).toBeUndefined();
  });

  it("treats an empty status as absent", () => {
    const patch = derivePatch("reports", { ...report, status: "" }, sweep);
    expect(patch.set.find((a) => a.attribute === "status")).toEqual({
      attribute: "status",
      value: "published",
      basis: { kind: "default" },
      current: "",
    });
  });

  it("a mirror follows a changed source: a stale mirror is replaced, conditioned on the old target", () => {
    const patch = derivePatch("reports", { ...report, project_id: "p0" }, sweep);
    expect(patch.set.find((a) => a.attribute === "project_id")).toEqual({
      attribute: "project_id",
      value: "p1",
      basis: { kind: "mirror", source: "projectId", sourceValue: "p1" },
      current: "p0",
    });
  });

  it("timestamp: createdAt first, then the write's stream time in the normalizer", () => {
    const { createdAt: _, ...noCreatedAt } = report;
    expect(values(derivePatch("reports", noCreatedAt, normalizer("2025-11-20T10:00:00.000Z"))).timestamp).toBe(
      "2025-11-20T10:00:00.000Z",
    );
    expect(
      derivePatch("reports", noCreatedAt, normalizer()).set.find((a) => a.attribute === "timestamp")?.basis,
    ).toEqual({ kind: "writeTime" });
    // A fallback holds only while the sources the rule prefers stay absent: the write is conditioned on it.
    expect(
      derivePatch("reports", noCreatedAt, normalizer()).set.find((a) => a.attribute === "timestamp")?.absentSources,
    ).toEqual(["createdAt"]);
    expect(
      derivePatch("reports", { ...noCreatedAt, submittedAt: "" }, { mode: "sweep" }).set.find(
        (a) => a.attribute === "timestamp",
      ),
    ).toMatchObject({
      value: report.reportDate,
      absentSources: ["createdAt", "submittedAt"],
    });
    expect(
      derivePatch("reports", report, normalizer()).set.find((a) => a.attribute === "timestamp"),
    ).not.toHaveProperty("absentSources");
  });

  it("timestamp in the sweep: submittedAt, else reportDate; never the stream time", () => {
    const { createdAt: _, ...noCreatedAt } = report;
    expect(
      values(derivePatch("reports", { ...noCreatedAt, submittedAt: "2025-11-02T09:00:00Z" }, sweep)).timestamp,
    ).toBe("2025-11-02T09:00:00Z");
    expect(values(derivePatch("reports", noCreatedAt, sweep)).timestamp).toBe("2025-11-01");
    expect(
      values(
        derivePatch(
          "reports",
          { ...noCreatedAt, submittedAt: "2025-11-02T09:00:00Z" },
          normalizer("2025-12-01T00:00:00Z"),
        ),
      ).timestamp,
    ).toBe("2025-12-01T00:00:00Z");
  });

  it("timestamp with no source at all in the sweep is a violation (the status index needs it)", () => {
    const patch = derivePatch("reports", { PK: "REPORT#r2", SK: "METADATA" }, sweep);
    expect(problems(patch)).toEqual(["timestamp:no-source:timestamp:NULL"]);
    expect(values(patch)).toEqual({ status: "published" });
  });

  it("keeps an existing timestamp when createdAt is absent", () => {
    const { createdAt: _, ...noCreatedAt } = report;
    const patch = derivePatch("reports", { ...noCreatedAt, timestamp: "2025-10-10T00:00:00Z" }, normalizer());
    expect(values(patch).timestamp).toBeUndefined();
    expect(patch.violations).toEqual([]);
  });

  it("an empty source counts as absent: no copy, and the next fallback is used", () => {
    const patch = derivePatch("reports", { ...report, projectId: "", createdAt: "" }, sweep);
    expect(values(patch).project_id).toBeUndefined();
    expect(values(patch).timestamp).toBe("2025-11-01");
  });

  it("never derives a non-string: a numeric projectId is a violation, not a write", () => {
    const patch = derivePatch("reports", { ...report, projectId: 42 }, sweep);
    expect(values(patch).project_id).toBeUndefined();
    expect(problems(patch)).toEqual(["project_id:source-not-string:projectId:N"]);
    const wrapped = derivePatch("reports", { ...report, managerId: new NumberValue("12345678901234567890") }, sweep);
    expect(problems(wrapped)).toEqual(["manager_id:source-not-string:managerId:N"]);
  });

  it("never replaces a target that holds a non-string", () => {
    const patch = derivePatch("reports", { ...report, status: 7, report_date: true }, sweep);
    expect(values(patch).status).toBeUndefined();
    expect(values(patch).report_date).toBeUndefined();
    expect(problems(patch).sort()).toEqual([
      "report_date:target-not-string:report_date:BOOL",
      "status:target-not-string:status:N",
    ]);
  });

  it("an empty target with nothing to derive it from is a violation", () => {
    const { projectId: _, ...noProject } = report;
    expect(problems(derivePatch("reports", { ...noProject, project_id: "" }, sweep))).toEqual([
      "project_id:target-empty:project_id:S",
    ]);
  });

  it("a missing optional source leaves the target absent without a violation", () => {
    const { managerId: _, ...noManager } = report;
    const patch = derivePatch("reports", noManager, sweep);
    expect(values(patch).manager_id).toBeUndefined();
    expect(patch.violations).toEqual([]);
  });
});

describe("personnel", () => {
  const person = {
    PK: "PERSON#e1",
    SK: "PROFILE",
    fullName: "Ada Byron",
    employmentStatus: "active",
    createdAt: "2024-01-01",
    updatedAt: "2025-06-01",
  };

  it.each([
    ["active", "active"],
    ["on_leave", "inactive"],
    ["inactive", "inactive"],
    ["terminated", "archived"],
  ])("maps employmentStatus %s to status %s", (employmentStatus, status) => {
    const patch = derivePatch("personnel", { ...person, employmentStatus }, sweep);
    expect(values(patch).status).toBe(status);
    expect(patch.set.find((a) => a.attribute === "status")?.basis).toEqual({
      kind: "derived",
      source: "employmentStatus",
      sourceValue: employmentStatus,
    });
  });

  it(
    "terminated staff are never made active (the plan's bug): " +
      "absent status is derived, an application 'active' is kept and reported",
    () => {
      expect(values(derivePatch("personnel", { ...person, employmentStatus: "terminated" }, sweep)).status).toBe(
        "archived",
      );
      const patch = derivePatch("personnel", { ...person, employmentStatus: "terminated", status: "active" }, sweep);
      expect(values(patch).status).toBeUndefined();
      expect(patch.disagreements).toEqual(["status"]);
    },
  );

  it("defaults status to active only when neither status nor employmentStatus exists", () => {
    const { employmentStatus: _, ...noEmployment } = person;
    expect(values(derivePatch("personnel", noEmployment, sweep)).status).toBe("active");
    expect(values(derivePatch("personnel", { ...noEmployment, status: "inactive" }, sweep)).status).toBeUndefined();
  });

  it("an unknown employmentStatus is a violation", () => {
    expect(problems(derivePatch("personnel", { ...person, employmentStatus: "contractor" }, sweep))).toEqual([
      "status:unmapped-value:employmentStatus:S",
    ]);
  });

  it("copies fullName; a numeric fullName is a violation", () => {
    expect(values(derivePatch("personnel", person, sweep)).full_name).toBe("Ada Byron");
    const patch = derivePatch("personnel", { ...person, fullName: 1234 }, sweep);
    expect(values(patch).full_name).toBeUndefined();
    expect(problems(patch)).toContain("full_name:source-not-string:fullName:N");
  });

  it("dateLastSeen: the latest HISTORY reportDate first, then updatedAt, then createdAt", () => {
    const withHistory = derivePatch("personnel", person, { mode: "sweep", latestHistoryReportDate: "2025-11-03" });
    expect(withHistory.set.find((a) => a.attribute === "dateLastSeen")).toEqual({
      attribute: "dateLastSeen",
      value: "2025-11-03",
      basis: { kind: "context", from: "latestHistoryReportDate" },
    });
    expect(values(derivePatch("personnel", person, sweep)).dateLastSeen).toBe("2025-06-01");
    const { updatedAt: _, ...noUpdated } = person;
    expect(values(derivePatch("personnel", noUpdated, sweep)).dateLastSeen).toBe("2024-01-01");
  });

  it("a numeric dateLastSeen is a violation and is not replaced", () => {
    const patch = derivePatch("personnel", { ...person, dateLastSeen: 20250601 }, sweep);
    expect(values(patch).dateLastSeen).toBeUndefined();
    expect(problems(patch)).toContain("dateLastSeen:target-not-string:dateLastSeen:N");
  });

  it("a person with no date at all is a violation (the status index needs dateLastSeen)", () => {
    const patch = derivePatch("personnel", { PK: "PERSON#e2", SK: "PROFILE", fullName: "X" }, sweep);
    expect(problems(patch)).toEqual(["dateLastSeen:no-source:dateLastSeen:NULL"]);
  });

  it("leaves HISTORY# items untouched", () => {
    const history = { PK: "PERSON#e1", SK: "HISTORY#2025-11-03#r1", reportDate: "2025-11-03", fullName: "Ada Byron" };
    expect(inScope("personnel", history)).toBe(false);
    expect(needsLatestHistory("personnel", history)).toBe(false);
    expect(derivePatch("personnel", history, sweep)).toEqual({
      table: "personnel",
      key: { PK: "PERSON#e1", SK: "HISTORY#2025-11-03#r1" },
      set: [],
      violations: [],
      disagreements: [],
      ownershipRecord: false,
    });
    expect(needsLatestHistory("personnel", person)).toBe(true);
  });
});

describe("vendors", () => {
  const vendor = {
    PK: "VENDOR#v1",
    SK: "PROFILE",
    companyName: "Acme Concrete",
    createdAt: "2024-02-01",
    updatedAt: "2025-05-05",
  };

  it("respects vendorType (the plan defaulted everyone to supplier)", () => {
    expect(values(derivePatch("vendors", { ...vendor, vendorType: "subcontractor" }, sweep)).vendor_type).toBe(
      "subcontractor",
    );
  });

  it("defaults vendor_type to supplier only when vendorType is absent", () => {
    expect(values(derivePatch("vendors", vendor, sweep))).toEqual({
      company_name: "Acme Concrete",
      vendor_type: "supplier",
      dateLastSeen: "2025-05-05",
    });
    expect(values(derivePatch("vendors", { ...vendor, vendor_type: "rental" }, sweep)).vendor_type).toBeUndefined();
  });

  it("dateLastSeen: updatedAt, else createdAt; an owned value follows updatedAt, the application's does not", () => {
    const { updatedAt: _, ...noUpdated } = vendor;
    expect(values(derivePatch("vendors", noUpdated, sweep)).dateLastSeen).toBe("2024-02-01");
    const owned = derivePatch("vendors", ownedBy(vendor, { dateLastSeen: "2025-01-01" }), sweep);
    expect(owned.set.find((a) => a.attribute === "dateLastSeen")).toMatchObject({
      value: "2025-05-05",
      current: "2025-01-01",
      basis: { kind: "derived", source: "updatedAt" },
    });
    const application = derivePatch("vendors", { ...vendor, dateLastSeen: "2025-01-01" }, sweep);
    expect(values(application).dateLastSeen).toBeUndefined();
    expect(application.disagreements).toEqual(["dateLastSeen"]);
  });

  it("vendor_type mirrors vendorType while it is present, even over the default the migrator wrote", () => {
    const defaulted = ownedBy(vendor, { vendor_type: "supplier" });
    expect(
      derivePatch("vendors", { ...defaulted, vendorType: "rental" }, sweep).set.find(
        (a) => a.attribute === "vendor_type",
      ),
    ).toMatchObject({
      value: "rental",
      current: "supplier",
      basis: { kind: "mirror", source: "vendorType" },
    });
    // The default is a fallback conditioned on vendorType staying absent.
    expect(derivePatch("vendors", vendor, sweep).set.find((a) => a.attribute === "vendor_type")?.absentSources).toEqual(
      ["vendorType"],
    );
  });

  it("leaves DELIVERY# items untouched", () => {
    expect(
      derivePatch("vendors", { PK: "VENDOR#v1", SK: "DELIVERY#2025-11-01", vendorType: "supplier" }, sweep).set,
    ).toEqual([]);
  });
});

describe("constraints and work-logs", () => {
  it("constraints copy projectId and reportDate; a constraint without projectId is legitimately unindexed", () => {
    expect(
      values(
        derivePatch(
          "constraints",
          { PK: "PROJECT#p1", SK: "CONSTRAINT#c1", projectId: "p1", reportDate: "2025-11-01" },
          sweep,
        ),
      ),
    ).toEqual({
      project_id: "p1",
      report_date: "2025-11-01",
    });
    const orphan = derivePatch(
      "constraints",
      { PK: "PROJECT#p1", SK: "CONSTRAINT#c2", reportDate: "2025-11-01" },
      sweep,
    );
    expect(values(orphan)).toEqual({ report_date: "2025-11-01" });
    expect(orphan.violations).toEqual([]);
  });

  it("work-logs copy projectId, reportDate and teamId", () => {
    expect(
      values(
        derivePatch(
          "work-logs",
          { PK: "WORKLOG#w1", SK: "ENTRY#1", projectId: "p1", reportDate: "2025-11-01", teamId: "t9" },
          sweep,
        ),
      ),
    ).toEqual({
      project_id: "p1",
      report_date: "2025-11-01",
      team_id: "t9",
    });
  });

  it("ai-analysis-cache has no rules", () => {
    expect(inScope("ai-analysis-cache", { PK: "A", SK: "B", analysisType: "x" })).toBe(false);
    expect(tablesWithRules()).toEqual(["reports", "personnel", "vendors", "constraints", "work-logs"]);
  });
});

describe("rule metadata", () => {
  it("lists target and source attributes for projections", () => {
    expect(targetAttributes("vendors")).toEqual(["company_name", "vendor_type", "dateLastSeen"]);
    expect(ruleAttributes("reports").sort()).toEqual(
      [
        "createdAt",
        "managerId",
        "manager_id",
        "projectId",
        "project_id",
        "reportDate",
        "report_date",
        "status",
        "submittedAt",
        "timestamp",
        OWNERSHIP_ATTRIBUTE,
      ].sort(),
    );
    expect(ruleAttributes("constraints")).not.toContain(OWNERSHIP_ATTRIBUTE);
    expect(derivedAttributes("reports")).toEqual(["status", "timestamp"]);
    expect(derivedAttributes("personnel")).toEqual(["status", "dateLastSeen"]);
    expect(derivedAttributes("vendors")).toEqual(["vendor_type", "dateLastSeen"]);
  });

  it("throws on an item without its key", () => {
    expect(() => derivePatch("reports", { SK: "METADATA" }, sweep)).toThrow(/PK/);
  });
});

// DESIGN.md section 4: a derived value is the migrator's only while it holds exactly what the migrator
// wrote (its ownership record says so); then it follows its inputs. Any other value is the application's.
describe("ownership of derived values", () => {
  const person = {
    PK: "PERSON#o1",
    SK: "PROFILE",
    fullName: "Ada Byron",
    employmentStatus: "active",
    createdAt: "2024-01-01",
    updatedAt: "2025-06-01",
  };
  const report = {
    PK: "REPORT#o1",
    SK: "METADATA",
    projectId: "p1",
    managerId: "m1",
    reportDate: "2025-11-01",
    createdAt: "2025-11-01T08:00:00Z",
  };

  it("owned values follow: status follows employmentStatus, with the owned value as the condition", () => {
    const item = ownedBy(
      { ...person, employmentStatus: "terminated" },
      { status: "active", dateLastSeen: "2025-06-01" },
    );
    const patch = derivePatch("personnel", item, sweep);
    expect(patch.set.find((a) => a.attribute === "status")).toEqual({
      attribute: "status",
      value: "archived",
      basis: { kind: "derived", source: "employmentStatus", sourceValue: "terminated" },
      current: "active",
    });
    expect(patch.ownershipRecord).toBe(true);
    expect(patch.disagreements).toEqual([]);
  });

  it("owned values follow: dateLastSeen follows a newer visit and the deletion of the latest one", () => {
    const item = ownedBy(person, { status: "active", dateLastSeen: "2025-10-01" });
    expect(
      values(derivePatch("personnel", item, { mode: "sweep", latestHistoryReportDate: "2025-11-03" })).dateLastSeen,
    ).toBe("2025-11-03");
    // The latest visit deleted: back to the one before it, or to updatedAt when none is left.
    expect(
      values(derivePatch("personnel", item, { mode: "sweep", latestHistoryReportDate: "2025-09-01" })).dateLastSeen,
    ).toBe("2025-09-01");
    expect(values(derivePatch("personnel", item, sweep)).dateLastSeen).toBe("2025-06-01");
  });

  it("owned values follow: timestamp follows an edited createdAt, but not the write time of a later record", () => {
    const item = ownedBy(
      { ...report, createdAt: "2025-11-02T08:00:00Z" },
      { status: "published", timestamp: "2025-11-01T08:00:00Z" },
    );
    expect(values(derivePatch("reports", item, normalizer())).timestamp).toBe("2025-11-02T08:00:00Z");
    const { createdAt: _, ...noCreatedAt } = report;
    const stamped = ownedBy(
      { ...noCreatedAt, project_id: "p1", manager_id: "m1", report_date: "2025-11-01" },
      { status: "published", timestamp: "2025-11-20T10:00:00.000Z" },
    );
    expect(derivePatch("reports", stamped, normalizer("2025-11-21T00:00:00.000Z")).set).toEqual([]);
    // Nor does the sweep replace the normalizer's write time with its own fallbacks.
    expect(derivePatch("reports", { ...stamped, submittedAt: "2025-11-02T09:00:00Z" }, sweep).set).toEqual([]);
  });

  it("no lost update: a derived value the application wrote is never written, whatever its inputs say", () => {
    // A legacy item: no ownership record at all.
    const legacy = { ...person, employmentStatus: "terminated", status: "inactive", dateLastSeen: "2020-01-01" };
    const patch = derivePatch("personnel", legacy, { mode: "sweep", latestHistoryReportDate: "2025-11-03" });
    expect(values(patch)).toEqual({ full_name: "Ada Byron" });
    expect(patch.disagreements.sort()).toEqual(["dateLastSeen", "status"]);
    expect(patch.violations).toEqual([]);
    // The migrator wrote 'active', the application changed it to 'inactive' since: the record no longer matches.
    const changed = {
      ...ownedBy(person, { status: "active", dateLastSeen: "2025-06-01" }),
      status: "inactive",
      employmentStatus: "terminated",
    };
    const after = derivePatch("personnel", changed, sweep);
    expect(values(after).status).toBeUndefined();
    expect(after.disagreements).toEqual(["status"]);
    // Reports: an application timestamp that is not createdAt stays.
    expect(
      values(derivePatch("reports", { ...report, timestamp: "2025-11-01T09:30:00Z" }, sweep)).timestamp,
    ).toBeUndefined();
  });

  it("an application value equal to the derivation is no disagreement", () => {
    const patch = derivePatch("personnel", { ...person, status: "active", dateLastSeen: "2025-06-01" }, sweep);
    expect(patch.set.filter((a) => a.attribute !== "full_name")).toEqual([]);
    expect(patch.disagreements).toEqual([]);
  });

  it(
    "a full-item put that dropped the record and the value is derived again; " +
      "one that kept the value without the record is the application's",
    () => {
      expect(values(derivePatch("personnel", { ...person, employmentStatus: "on_leave" }, sweep)).status).toBe(
        "inactive",
      );
      expect(
        values(derivePatch("personnel", { ...person, employmentStatus: "on_leave", status: "active" }, sweep)).status,
      ).toBeUndefined();
    },
  );

  it("an owned value whose input the rules cannot map is a violation, and is kept", () => {
    const patch = derivePatch(
      "personnel",
      ownedBy({ ...person, employmentStatus: "contractor" }, { status: "active", dateLastSeen: "2025-06-01" }),
      sweep,
    );
    expect(values(patch).status).toBeUndefined();
    expect(problems(patch)).toEqual(["status:unmapped-value:employmentStatus:S"]);
  });

  it("an application value is not a violation even when its inputs are unusable", () => {
    const patch = derivePatch(
      "personnel",
      { ...person, employmentStatus: "contractor", status: "active", dateLastSeen: "2025-06-01" },
      sweep,
    );
    expect(patch.violations).toEqual([]);
  });

  it(
    "an application write of the very value the migrator holds changes nothing on the item: " +
      "the value stays the migrator's",
    () => {
      // DynamoDB keeps no trace of a SET to the same value (the images show no change), so no rule can tell.
      const item = ownedBy(
        { ...person, employmentStatus: "terminated" },
        { status: "inactive", dateLastSeen: "2025-06-01" },
      );
      expect(values(derivePatch("personnel", item, sweep)).status).toBe("archived");
    },
  );

  it("the record holds hashes, not values", () => {
    expect(ownershipHash("archived")).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(ownershipHash("archived")).not.toBe(ownershipHash("active"));
  });
});
