// Normalization rules (DESIGN.md section 4) as pure functions: item + context -> patch.
// A patch says, per target attribute, the value to write and what it was derived from, so the
// applier can condition the write on exactly that state and never overwrite the application.
//
// Two kinds of target. A *mirror* is a pure rename (project_id := projectId) and always follows its
// source. A *derived* value (a default, a mapping, a fallback chain) is written only where the target
// is absent or empty, or where the migrator still owns it (ownership.ts): a value the application
// wrote, or changed since the migrator did, is never written again.
import { NumberValue } from "@aws-sdk/lib-dynamodb";
import { OWNERSHIP_ATTRIBUTE, ownershipRecord, ownsValue } from "./ownership.js";
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
  /** A mirror: follows its source, written only while the source still holds `sourceValue`. */
  | { kind: "mirror"; source: string; sourceValue: string }
  /** Derived from another attribute (as is or mapped): written only while it still holds `sourceValue`. */
  | { kind: "derived"; source: string; sourceValue: string }
  /** A constant default. */
  | { kind: "default" }
  /** The write's stream time (normalizer). */
  | { kind: "writeTime" }
  /** Derived from other items (a person's HISTORY#). */
  | { kind: "context"; from: "latestHistoryReportDate" };

/** Where a value comes from, in words for reports (attribute names only, never values). */
export function describeBasis(basis: Basis): string {
  switch (basis.kind) {
    case "mirror":
    case "derived":
      return basis.source;
    case "context":
      return "latest HISTORY# reportDate";
    case "writeTime":
      return "write time";
    case "default":
      return "default";
  }
}

export interface Assignment {
  attribute: string;
  value: string;
  basis: Basis;
  /**
   * The target's value when the patch was derived (a string, possibly empty); undefined = absent.
   * For a derived value that is present, the migrator owns it: the write replaces its own value.
   */
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
  /**
   * Derived attributes the application owns whose value differs from what the rules derive: the
   * item is indexed under the application's value. Informational (verify reports them), never written.
   */
  disagreements: string[];
  /** Whether the item already has an ownership record (the applier adds entries to it, or creates it). */
  ownershipRecord: boolean;
}

type Candidate =
  /**
   * Another attribute of the item, as is or through `map`. With `mode`, a fallback only that writer
   * has, which only fills an absent value (an owned value does not follow it).
   */
  | { from: "attribute"; name: string; map?: Readonly<Record<string, string>>; mode?: RuleContext["mode"] }
  | { from: "constant"; value: string }
  | { from: "writeTime"; mode: "normalizer" }
  | { from: "latestHistoryReportDate" };

interface TargetRule {
  attribute: string;
  /** A mirror of this attribute: whenever it is present, the target follows it. */
  mirrorOf?: string;
  /** A derived value: tried in order (where no mirror source is present); the first that yields a value decides. */
  derived?: Candidate[];
  /** An index must hold every item in scope, so having no source is a violation. */
  required?: boolean;
}

interface TableRules {
  /** Which items the rules apply to (HISTORY#/DELIVERY# items are never touched). */
  scope: (item: Item) => boolean;
  targets: TargetRule[];
}

const mirror = (attribute: string, source: string): TargetRule => ({ attribute, mirrorOf: source });
const attribute = (name: string, map?: Record<string, string>): Candidate => ({
  from: "attribute",
  name,
  ...(map ? { map } : {}),
});
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
      mirror("project_id", "projectId"),
      mirror("manager_id", "managerId"),
      mirror("report_date", "reportDate"),
      { attribute: "status", required: true, derived: [constant("published")] },
      {
        attribute: "timestamp",
        required: true,
        derived: [
          attribute("createdAt"),
          { from: "writeTime", mode: "normalizer" },
          { from: "attribute", name: "submittedAt", mode: "sweep" },
          { from: "attribute", name: "reportDate", mode: "sweep" },
        ],
      },
    ],
  },
  personnel: {
    scope: isProfile,
    targets: [
      mirror("full_name", "fullName"),
      {
        attribute: "status",
        required: true,
        derived: [attribute("employmentStatus", EMPLOYMENT_STATUS_TO_STATUS), constant("active")],
      },
      {
        attribute: "dateLastSeen",
        required: true,
        derived: [{ from: "latestHistoryReportDate" }, attribute("updatedAt"), attribute("createdAt")],
      },
    ],
  },
  vendors: {
    scope: isProfile,
    targets: [
      mirror("company_name", "companyName"),
      { attribute: "vendor_type", required: true, mirrorOf: "vendorType", derived: [constant("supplier")] },
      { attribute: "dateLastSeen", required: true, derived: [attribute("updatedAt"), attribute("createdAt")] },
    ],
  },
  constraints: {
    scope: everyItem,
    targets: [mirror("project_id", "projectId"), mirror("report_date", "reportDate")],
  },
  "work-logs": {
    scope: everyItem,
    targets: [mirror("project_id", "projectId"), mirror("report_date", "reportDate"), mirror("team_id", "teamId")],
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

/** Attributes of this table the migrator may own (derived values). */
export function derivedAttributes(table: SiteLogixTable): string[] {
  return RULES[table].targets.filter((t) => t.derived).map((t) => t.attribute);
}

/** Attributes the rules read (sources, targets and the ownership record): what a scan needs to project. */
export function ruleAttributes(table: SiteLogixTable): string[] {
  const names = new Set<string>();
  for (const target of RULES[table].targets) {
    names.add(target.attribute);
    if (target.mirrorOf) names.add(target.mirrorOf);
    for (const c of target.derived ?? []) if (c.from === "attribute") names.add(c.name);
  }
  if (derivedAttributes(table).length > 0) names.add(OWNERSHIP_ATTRIBUTE);
  return [...names];
}

/** Whether deriving this item's patch needs the latest HISTORY# reportDate of the person. */
export function needsLatestHistory(table: SiteLogixTable, item: Item): boolean {
  return table === "personnel" && isProfile(item);
}

type Resolution = { value: string; basis: Basis } | { violation: Omit<Violation, "attribute"> };

function resolve(candidate: Candidate, item: Item, ctx: RuleContext): Resolution | undefined {
  switch (candidate.from) {
    case "constant":
      return { value: candidate.value, basis: { kind: "default" } };
    case "writeTime":
      return isPresent(ctx.writeTime) ? { value: ctx.writeTime!, basis: { kind: "writeTime" } } : undefined;
    case "latestHistoryReportDate":
      return isPresent(ctx.latestHistoryReportDate)
        ? { value: ctx.latestHistoryReportDate!, basis: { kind: "context", from: "latestHistoryReportDate" } }
        : undefined;
    case "attribute": {
      const raw = item[candidate.name];
      if (!isPresent(raw)) return undefined;
      if (typeof raw !== "string")
        return { violation: { problem: "source-not-string", at: candidate.name, type: dynamoType(raw) } };
      const value = candidate.map ? candidate.map[raw] : raw;
      if (value === undefined) return { violation: { problem: "unmapped-value", at: candidate.name, type: "S" } };
      return { value, basis: { kind: "derived", source: candidate.name, sourceValue: raw } };
    }
  }
}

/**
 * The first candidate of a derived target's chain that yields a value (or a problem), and the item
 * attributes it preferred that were absent. `follow`: the value is the migrator's own and follows
 * its inputs, which a writer's fill-only fallbacks are not.
 */
function resolveChain(target: TargetRule, item: Item, ctx: RuleContext, follow: boolean) {
  const absentSources = target.mirrorOf ? [target.mirrorOf] : [];
  for (const candidate of target.derived ?? []) {
    const fillOnly = "mode" in candidate && candidate.mode !== undefined;
    if (fillOnly && (candidate.mode !== ctx.mode || follow)) continue;
    const resolution = resolve(candidate, item, ctx);
    if (resolution !== undefined) return { resolution, absentSources };
    if (candidate.from === "attribute") absentSources.push(candidate.name);
  }
  return { resolution: undefined, absentSources };
}

/**
 * The patch that normalizes `item`. Only strings are ever written: a mirror over an absent, empty or
 * stale value; a derived value over an absent or empty one, or over the migrator's own (owned) value.
 * Anything else the rules cannot fix is a violation.
 */
export function derivePatch(table: SiteLogixTable, item: Item, ctx: RuleContext): Patch {
  const patch: Patch = {
    table,
    key: itemKey(table, item),
    set: [],
    violations: [],
    disagreements: [],
    ownershipRecord: ownershipRecord(item) !== undefined,
  };
  if (!inScope(table, item)) return patch;

  for (const target of RULES[table].targets) {
    const current = item[target.attribute];
    const violation = (v: Omit<Violation, "attribute">) => patch.violations.push({ attribute: target.attribute, ...v });
    if (current !== undefined && typeof current !== "string") {
      violation({ problem: "target-not-string", at: target.attribute, type: dynamoType(current) });
      continue;
    }
    const assign = (value: string, basis: Basis, absentSources: string[] = []) =>
      patch.set.push({
        attribute: target.attribute,
        value,
        basis,
        ...(current !== undefined ? { current } : {}),
        ...(absentSources.length > 0 ? { absentSources } : {}),
      });

    if (target.mirrorOf && isPresent(item[target.mirrorOf])) {
      const raw = item[target.mirrorOf];
      if (typeof raw !== "string")
        violation({ problem: "source-not-string", at: target.mirrorOf, type: dynamoType(raw) });
      else if (current !== raw) assign(raw, { kind: "mirror", source: target.mirrorOf, sourceValue: raw });
      continue;
    }

    const present = isPresent(current);
    const owned = present && ownsValue(item, target.attribute);
    if (present && !owned) {
      // The application's value: never written; a different derivation is only worth reporting.
      const { resolution } = resolveChain(target, item, ctx, false);
      if (resolution && "value" in resolution && resolution.value !== current)
        patch.disagreements.push(target.attribute);
      continue;
    }
    const { resolution, absentSources } = resolveChain(target, item, ctx, owned);
    if (resolution === undefined) {
      if (current === "") violation({ problem: "target-empty", at: target.attribute, type: "S" });
      else if (current === undefined && target.required)
        violation({ problem: "no-source", at: target.attribute, type: "NULL" });
      continue;
    }
    if ("violation" in resolution) {
      violation(resolution.violation);
      continue;
    }
    if (resolution.value !== current) assign(resolution.value, resolution.basis, absentSources);
  }
  return patch;
}
