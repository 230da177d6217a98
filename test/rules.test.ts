// Unit tests of the normalization rules (DESIGN.md section 4): every row and its edge cases.
import { NumberValue } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { derivePatch, inScope, needsLatestHistory, ruleAttributes, tablesWithRules, targetAttributes, type Patch, type RuleContext } from "@sitelogix/core";

const sweep: RuleContext = { mode: "sweep" };
const normalizer = (writeTime = "2025-11-20T10:00:00.000Z"): RuleContext => ({ mode: "normalizer", writeTime });

/** The patch as `{ attribute: value }` for compact assertions. */
const values = (patch: Patch) => Object.fromEntries(patch.set.map((a) => [a.attribute, a.value]));
const problems = (patch: Patch) => patch.violations.map((v) => `${v.attribute}:${v.problem}:${v.at}:${v.type}`);

describe("reports", () => {
  const report = { PK: "REPORT#r1", SK: "METADATA", projectId: "p1", managerId: "m1", reportDate: "2025-11-01", createdAt: "2025-11-01T08:00:00Z" };

  it("copies projectId, managerId, reportDate and createdAt, and defaults status to published", () => {
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
    expect(patch.set.find((a) => a.attribute === "project_id")?.basis).toEqual({ kind: "copy", source: "projectId", sourceValue: "p1" });
    expect(patch.set.find((a) => a.attribute === "status")?.basis).toEqual({ kind: "default" });
  });

  it("is empty for a normalized item (no write, no loop)", () => {
    const normalized = { ...report, project_id: "p1", manager_id: "m1", report_date: "2025-11-01", status: "published", timestamp: "2025-11-01T08:00:00Z" };
    expect(derivePatch("reports", normalized, sweep).set).toEqual([]);
    expect(derivePatch("reports", normalized, normalizer()).set).toEqual([]);
  });

  it("never overwrites a status the application set", () => {
    const patch = derivePatch("reports", { ...report, status: "draft" }, sweep);
    expect(values(patch).status).toBeUndefined();
  });

  it("treats an empty status as absent", () => {
    const patch = derivePatch("reports", { ...report, status: "" }, sweep);
    expect(patch.set.find((a) => a.attribute === "status")).toEqual({ attribute: "status", value: "published", basis: { kind: "default" }, current: "" });
  });

  it("follows a changed source: a stale copy is replaced, conditioned on the old target", () => {
    const patch = derivePatch("reports", { ...report, project_id: "p0" }, sweep);
    expect(patch.set.find((a) => a.attribute === "project_id")).toEqual({
      attribute: "project_id",
      value: "p1",
      basis: { kind: "copy", source: "projectId", sourceValue: "p1" },
      current: "p0",
    });
  });

  it("timestamp: createdAt first, then the write's stream time in the normalizer", () => {
    const { createdAt: _, ...noCreatedAt } = report;
    expect(values(derivePatch("reports", noCreatedAt, normalizer("2025-11-20T10:00:00.000Z"))).timestamp).toBe("2025-11-20T10:00:00.000Z");
    expect(derivePatch("reports", noCreatedAt, normalizer()).set.find((a) => a.attribute === "timestamp")?.basis).toEqual({ kind: "default" });
    // A fallback holds only while the sources the rule prefers stay absent: the write is conditioned on it.
    expect(derivePatch("reports", noCreatedAt, normalizer()).set.find((a) => a.attribute === "timestamp")?.absentSources).toEqual(["createdAt"]);
    expect(derivePatch("reports", { ...noCreatedAt, submittedAt: "" }, { mode: "sweep" }).set.find((a) => a.attribute === "timestamp")).toMatchObject({
      value: report.reportDate,
      absentSources: ["createdAt", "submittedAt"],
    });
    expect(derivePatch("reports", report, normalizer()).set.find((a) => a.attribute === "timestamp")).not.toHaveProperty("absentSources");
  });

  it("timestamp in the sweep: submittedAt, else reportDate; never the stream time", () => {
    const { createdAt: _, ...noCreatedAt } = report;
    expect(values(derivePatch("reports", { ...noCreatedAt, submittedAt: "2025-11-02T09:00:00Z" }, sweep)).timestamp).toBe("2025-11-02T09:00:00Z");
    expect(values(derivePatch("reports", noCreatedAt, sweep)).timestamp).toBe("2025-11-01");
    expect(values(derivePatch("reports", { ...noCreatedAt, submittedAt: "2025-11-02T09:00:00Z" }, normalizer("2025-12-01T00:00:00Z"))).timestamp).toBe("2025-12-01T00:00:00Z");
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
    expect(problems(patch).sort()).toEqual(["report_date:target-not-string:report_date:BOOL", "status:target-not-string:status:N"]);
  });

  it("an empty target with nothing to derive it from is a violation", () => {
    const { projectId: _, ...noProject } = report;
    expect(problems(derivePatch("reports", { ...noProject, project_id: "" }, sweep))).toEqual(["project_id:target-empty:project_id:S"]);
  });

  it("a missing optional source leaves the target absent without a violation", () => {
    const { managerId: _, ...noManager } = report;
    const patch = derivePatch("reports", noManager, sweep);
    expect(values(patch).manager_id).toBeUndefined();
    expect(patch.violations).toEqual([]);
  });
});

describe("personnel", () => {
  const person = { PK: "PERSON#e1", SK: "PROFILE", fullName: "Ada Byron", employmentStatus: "active", createdAt: "2024-01-01", updatedAt: "2025-06-01" };

  it.each([
    ["active", "active"],
    ["on_leave", "inactive"],
    ["inactive", "inactive"],
    ["terminated", "archived"],
  ])("maps employmentStatus %s to status %s", (employmentStatus, status) => {
    const patch = derivePatch("personnel", { ...person, employmentStatus }, sweep);
    expect(values(patch).status).toBe(status);
    expect(patch.set.find((a) => a.attribute === "status")?.basis).toEqual({ kind: "copy", source: "employmentStatus", sourceValue: employmentStatus });
  });

  it("terminated staff become archived even when status says active (the plan's bug)", () => {
    const patch = derivePatch("personnel", { ...person, employmentStatus: "terminated", status: "active" }, sweep);
    expect(patch.set.find((a) => a.attribute === "status")).toMatchObject({ value: "archived", current: "active" });
  });

  it("defaults status to active only when neither status nor employmentStatus exists", () => {
    const { employmentStatus: _, ...noEmployment } = person;
    expect(values(derivePatch("personnel", noEmployment, sweep)).status).toBe("active");
    expect(values(derivePatch("personnel", { ...noEmployment, status: "inactive" }, sweep)).status).toBeUndefined();
  });

  it("an unknown employmentStatus is a violation", () => {
    expect(problems(derivePatch("personnel", { ...person, employmentStatus: "contractor" }, sweep))).toEqual(["status:unmapped-value:employmentStatus:S"]);
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
    expect(derivePatch("personnel", history, sweep)).toEqual({ table: "personnel", key: { PK: "PERSON#e1", SK: "HISTORY#2025-11-03#r1" }, set: [], violations: [] });
    expect(needsLatestHistory("personnel", person)).toBe(true);
  });
});

describe("vendors", () => {
  const vendor = { PK: "VENDOR#v1", SK: "PROFILE", companyName: "Acme Concrete", createdAt: "2024-02-01", updatedAt: "2025-05-05" };

  it("respects vendorType (the plan defaulted everyone to supplier)", () => {
    expect(values(derivePatch("vendors", { ...vendor, vendorType: "subcontractor" }, sweep)).vendor_type).toBe("subcontractor");
  });

  it("defaults vendor_type to supplier only when vendorType is absent", () => {
    expect(values(derivePatch("vendors", vendor, sweep))).toEqual({ company_name: "Acme Concrete", vendor_type: "supplier", dateLastSeen: "2025-05-05" });
    expect(values(derivePatch("vendors", { ...vendor, vendor_type: "rental" }, sweep)).vendor_type).toBeUndefined();
  });

  it("dateLastSeen follows updatedAt, else createdAt", () => {
    const { updatedAt: _, ...noUpdated } = vendor;
    expect(values(derivePatch("vendors", noUpdated, sweep)).dateLastSeen).toBe("2024-02-01");
    const stale = derivePatch("vendors", { ...vendor, dateLastSeen: "2025-01-01" }, sweep);
    expect(stale.set.find((a) => a.attribute === "dateLastSeen")).toMatchObject({ value: "2025-05-05", current: "2025-01-01", basis: { kind: "copy", source: "updatedAt" } });
  });

  it("leaves DELIVERY# items untouched", () => {
    expect(derivePatch("vendors", { PK: "VENDOR#v1", SK: "DELIVERY#2025-11-01", vendorType: "supplier" }, sweep).set).toEqual([]);
  });
});

describe("constraints and work-logs", () => {
  it("constraints copy projectId and reportDate; a constraint without projectId is legitimately unindexed", () => {
    expect(values(derivePatch("constraints", { PK: "PROJECT#p1", SK: "CONSTRAINT#c1", projectId: "p1", reportDate: "2025-11-01" }, sweep))).toEqual({
      project_id: "p1",
      report_date: "2025-11-01",
    });
    const orphan = derivePatch("constraints", { PK: "PROJECT#p1", SK: "CONSTRAINT#c2", reportDate: "2025-11-01" }, sweep);
    expect(values(orphan)).toEqual({ report_date: "2025-11-01" });
    expect(orphan.violations).toEqual([]);
  });

  it("work-logs copy projectId, reportDate and teamId", () => {
    expect(values(derivePatch("work-logs", { PK: "WORKLOG#w1", SK: "ENTRY#1", projectId: "p1", reportDate: "2025-11-01", teamId: "t9" }, sweep))).toEqual({
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
      ["createdAt", "managerId", "manager_id", "projectId", "project_id", "reportDate", "report_date", "status", "submittedAt", "timestamp"].sort(),
    );
  });

  it("throws on an item without its key", () => {
    expect(() => derivePatch("reports", { SK: "METADATA" }, sweep)).toThrow(/PK/);
  });
});
