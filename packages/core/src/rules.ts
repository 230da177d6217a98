// Normalization rules (DESIGN.md section 4) as pure functions: item + context -> patch.
// A patch says, per target attribute, the value to write and what it was derived from, so the
// applier can condition the write on exactly that state and never overwrite the application.
import { NumberValue } from "@aws-sdk/lib-dynamodb";
import { itemKey, type SiteLogixTable } from "./schema.js";

export type Item = Record<string, unknown>;

/** The DynamoDB type of an unmarshalled value (numbers may arrive wrapped as NumberValue). */
export type DynamoType = "S" | "N" | "B" | "BOOL" | "NULL" | "M" | "L" | "SS" | "NS" | "BS";

export function dynamoType(value: unknown): DynamoType {
  if (typeof value === "string") return "S";
  if (typeof value === "number" || typeof value === "bigint" || value instanceof NumberValue) return "N";
  if (typeof value === "boolean") return "BOOL";
  if (value === null || value === undefined) return "NULL";
  if (value instanceof Uint8Array) return "B";
  if (Array.isArray(value)) return "L";
  if (value instanceof Set) {
    const first = value.values().next().value;
    return typeof first === "string" ? "SS" : first instanceof Uint8Array ? "BS" : "NS";
  }
  return "M";
}

/** What the rules need beyond the item itself. */
export interface RuleContext {
  /** The normalizer knows the write's stream time; the sweep falls back to other attributes. */
  mode: "normalizer" | "sweep";
  /** ISO time of the write (normalizer: the record's ApproximateCreationDateTime). */
  writeTime?: string;
  /** Personnel PROFILE: the latest reportDate among the person's HISTORY# items; undefined = none. */
  latestHistoryReportDate?: string;
}

/** Why a value is what it is; the applier turns it into the write's condition. */
export type Basis =
  /** A copy that follows its source: written only while the source still holds `sourceValue`. */
  | { kind: "copy"; source: string; sourceValue: string }
  /** A default: written only where the attribute is absent or an empty string. */
  | { kind: "default" }
  /** Derived from other items (a person's HISTORY#): written only while the target is unchanged. */
  | { kind: "context"; from: "latestHistoryReportDate" };

export interface Assignment {
  attribute: string;
  value: string;
  basis: Basis;
  /** The target's value when the patch was derived (a string, possibly empty); undefined = absent. */
  current?: string;
  /**
   * Sources the rule prefers to the one used, absent or empty when the patch was derived: a
   * fallback is written only while they still are (once the application sets one, it decides).
   */
  absentSources?: string[];
}

export type ViolationProblem =
  /** The source holds a non-string: copying it would put a non-string into an index key. */
  | "source-not-string"
  /** The target already holds a non-string: the migrator never replaces it (it is not a stale copy). */
  | "target-not-string"
  /** The source holds a value the mapping does not know (e.g. an unknown employmentStatus). */
  | "unmapped-value"
  /** The target is required by an index but nothing to derive it from exists. */
  | "no-source"
  /** The target is an empty string and nothing to derive it from exists. */
  | "target-empty";

export interface Violation {
  attribute: string;
  problem: ViolationProblem;
  /** The attribute at fault (the source, or the target itself). */
  at: string;
  /** The DynamoDB type found there. */
  type: DynamoType;
}

export interface Patch {
  table: SiteLogixTable;
  key: Record<string, string>;
  set: Assignment[];
  violations: Violation[];
}

type Candidate =
  /** Value of another attribute of the item; `follow`: a copy that tracks it, else a one-time default. */
  | { from: "attribute"; name: string; follow: boolean; map?: Readonly<Record<string, string>>; mode?: RuleContext["mode"] }
  | { from: "constant"; value: string }
  | { from: "writeTime"; mode: RuleContext["mode"] }
  | { from: "latestHistoryReportDate" };

interface TargetRule {
  attribute: string;
  /** Tried in order; the first that yields a value decides. */
  candidates: Candidate[];
  /** An index must hold every item in scope, so having no source is a violation. */
  required?: boolean;
}

interface TableRules {
  /** Which items the rules apply to (HISTORY#/DELIVERY# items are never touched). */
  scope: (item: Item) => boolean;
  targets: TargetRule[];
}

const copy = (name: string, map?: Record<string, string>): Candidate => ({ from: "attribute", name, follow: true, ...(map ? { map } : {}) });
const constant = (value: string): Candidate => ({ from: "constant", value });
const isProfile = (item: Item) => item.SK === "PROFILE";
const everyItem = () => true;

export const EMPLOYMENT_STATUS_TO_STATUS: Readonly<Record<string, string>> = {
  active: "active",
  on_leave: "inactive",
  inactive: "inactive",
  terminated: "archived",
};

const RULES: Record<SiteLogixTable, TableRules> = {
  reports: {
    scope: everyItem,
    targets: [
      { attribute: "project_id", candidates: [copy("projectId")] },
      { attribute: "manager_id", candidates: [copy("managerId")] },
      { attribute: "report_date", candidates: [copy("reportDate")] },
      { attribute: "status", required: true, candidates: [constant("published")] },
      {
        attribute: "timestamp",
        required: true,
        candidates: [
          copy("createdAt"),
          { from: "writeTime", mode: "normalizer" },
          { from: "attribute", name: "submittedAt", follow: false, mode: "sweep" },
          { from: "attribute", name: "reportDate", follow: false, mode: "sweep" },
        ],
      },
    ],
  },
  personnel: {
    scope: isProfile,
    targets: [
      { attribute: "full_name", candidates: [copy("fullName")] },
      { attribute: "status", required: true, candidates: [copy("employmentStatus", EMPLOYMENT_STATUS_TO_STATUS), constant("active")] },
      { attribute: "dateLastSeen", required: true, candidates: [{ from: "latestHistoryReportDate" }, copy("updatedAt"), copy("createdAt")] },
    ],
  },
  vendors: {
    scope: isProfile,
    targets: [
      { attribute: "company_name", candidates: [copy("companyName")] },
      { attribute: "vendor_type", required: true, candidates: [copy("vendorType"), constant("supplier")] },
      { attribute: "dateLastSeen", required: true, candidates: [copy("updatedAt"), copy("createdAt")] },
    ],
  },
  constraints: {
    scope: everyItem,
    targets: [
      { attribute: "project_id", candidates: [copy("projectId")] },
      { attribute: "report_date", candidates: [copy("reportDate")] },
    ],
  },
  "work-logs": {
    scope: everyItem,
    targets: [
      { attribute: "project_id", candidates: [copy("projectId")] },
      { attribute: "report_date", candidates: [copy("reportDate")] },
      { attribute: "team_id", candidates: [copy("teamId")] },
    ],
  },
  "ai-analysis-cache": { scope: everyItem, targets: [] },
};

/** Empty strings count as absent: DynamoDB cannot index an empty key value. */
const isPresent = (value: unknown) => value !== undefined && value !== "";

/** Does any rule apply to this item? */
export function inScope(table: SiteLogixTable, item: Item): boolean {
  return RULES[table].targets.length > 0 && RULES[table].scope(item);
}

/** Tables whose items the rules may change (the normalizer subscribes to these). */
export function tablesWithRules(): SiteLogixTable[] {
  return (Object.keys(RULES) as SiteLogixTable[]).filter((t) => RULES[t].targets.length > 0);
}

/** Attributes the rules may write on this table. */
export function targetAttributes(table: SiteLogixTable): string[] {
  return RULES[table].targets.map((t) => t.attribute);
}

/** Attributes the rules read (sources and targets): what a scan needs to project. */
export function ruleAttributes(table: SiteLogixTable): string[] {
  const names = new Set<string>();
  for (const target of RULES[table].targets) {
    names.add(target.attribute);
    for (const c of target.candidates) if (c.from === "attribute") names.add(c.name);
  }
  return [...names];
}

/** Whether deriving this item's patch needs the latest HISTORY# reportDate of the person. */
export function needsLatestHistory(table: SiteLogixTable, item: Item): boolean {
  return table === "personnel" && isProfile(item);
}

type Resolution = { value: string; basis: Basis } | { violation: Omit<Violation, "attribute"> } | undefined;

function resolve(candidate: Candidate, item: Item, ctx: RuleContext): Resolution {
  switch (candidate.from) {
    case "constant":
      return { value: candidate.value, basis: { kind: "default" } };
    case "writeTime":
      return candidate.mode === ctx.mode && isPresent(ctx.writeTime)
        ? { value: ctx.writeTime!, basis: { kind: "default" } }
        : undefined;
    case "latestHistoryReportDate":
      return isPresent(ctx.latestHistoryReportDate)
        ? { value: ctx.latestHistoryReportDate!, basis: { kind: "context", from: "latestHistoryReportDate" } }
        : undefined;
    case "attribute": {
      if (candidate.mode && candidate.mode !== ctx.mode) return undefined;
      const raw = item[candidate.name];
      if (!isPresent(raw)) return undefined;
      if (typeof raw !== "string") {
        return { violation: { problem: "source-not-string", at: candidate.name, type: dynamoType(raw) } };
      }
      const value = candidate.map ? candidate.map[raw] : raw;
      if (value === undefined) return { violation: { problem: "unmapped-value", at: candidate.name, type: "S" } };
      return {
        value,
        basis: candidate.follow ? { kind: "copy", source: candidate.name, sourceValue: raw } : { kind: "default" },
      };
    }
  }
}

/**
 * The patch that normalizes `item`. Only strings are ever written, and only over an absent value, an
 * empty string, or (for copies and context values) a stale string; anything else is a violation.
 */
export function derivePatch(table: SiteLogixTable, item: Item, ctx: RuleContext): Patch {
  const patch: Patch = { table, key: itemKey(table, item), set: [], violations: [] };
  if (!inScope(table, item)) return patch;

  for (const target of RULES[table].targets) {
    const current = item[target.attribute];
    if (current !== undefined && typeof current !== "string") {
      patch.violations.push({ attribute: target.attribute, problem: "target-not-string", at: target.attribute, type: dynamoType(current) });
      continue;
    }
    let resolution: Resolution;
    const absentSources: string[] = [];
    for (const candidate of target.candidates) {
      resolution = resolve(candidate, item, ctx);
      if (resolution !== undefined) break;
      if (candidate.from === "attribute" && (candidate.mode === undefined || candidate.mode === ctx.mode)) absentSources.push(candidate.name);
    }

    if (resolution === undefined) {
      if (current === "") {
        patch.violations.push({ attribute: target.attribute, problem: "target-empty", at: target.attribute, type: "S" });
      } else if (current === undefined && target.required) {
        patch.violations.push({ attribute: target.attribute, problem: "no-source", at: target.attribute, type: "NULL" });
      }
      continue;
    }
    if ("violation" in resolution) {
      patch.violations.push({ attribute: target.attribute, ...resolution.violation });
      continue;
    }
    // A default never replaces a value that is already there; a copy replaces a stale one.
    if (resolution.basis.kind === "default" ? isPresent(current) : current === resolution.value) continue;
    patch.set.push({
      attribute: target.attribute,
      value: resolution.value,
      basis: resolution.basis,
      ...(current !== undefined ? { current } : {}),
      ...(absentSources.length > 0 ? { absentSources } : {}),
    });
  }
  return patch;
}
