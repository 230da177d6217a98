// Per-stage deploy settings, read from the checked-in migration.config.ts at the repository root.
import { defaultTableNames, type TableNames } from "@sitelogix/core/names";
import { PHASES, type Phase } from "@sitelogix/core/schema";
import { sweepMachineProblems, type DistributedSweepConfig } from "@sitelogix/core/sweep-machine/asl";

/** The phases a stage can be deployed at (`legacy` is production before this app exists). */
export type DeployPhase = Exclude<Phase, "legacy">;
export const DEPLOY_PHASES = PHASES.filter((p): p is DeployPhase => p !== "legacy");

export interface StageConfig {
  phase: DeployPhase;
  /**
   * `adopt`: the four SiteLogix tables that exist before the migration are imported into state under
   * their own names and never created; `create` (the default): the stage creates them, with the
   * legacy schema, under `<stage>-` prefixed names, so the whole migration can be rehearsed.
   */
  existingTables?: "adopt" | "create";
  /** Physical name of the audit table, when it must differ from the default. */
  auditTableName?: string;
  /**
   * Who the alarms and the phase events (gate, sweep, index) reach. A protected stage (`prod`) is
   * refused without one: an alarm that notifies nobody is no alarm.
   */
  alarms?: AlarmDestination;
  /** The distributed sweep's state machine and worker (`sweep --distributed`); defaults: SWEEP_MACHINE_DEFAULTS. */
  sweep?: DistributedSweepConfig;
  /** The audit trail's retention and its signed digests (stacks/digests.ts). */
  audit?: AuditConfig;
}

export interface AlarmDestination {
  /** Addresses subscribed to the stage's topic by e-mail (AWS asks each to confirm once). */
  email?: string[];
  /**
   * An existing SNS topic (in the stage's region) to notify instead of one the stage creates;
   * e-mails subscribe to it.
   */
  topicArn?: string;
}

export interface AuditConfig {
  /**
   * Whole years an audit entry is kept (its TTL, set by the audit logger) and a digest is locked in
   * S3 (Object Lock, COMPLIANCE mode: nobody, not even the account root, can delete it earlier).
   * Default 7.
   */
  retentionYears?: number;
  /**
   * Lock digests for this many days instead of `retentionYears`, so that a stage can be torn down
   * (`sst remove` empties the bucket once the locks have expired). Refused on a protected stage.
   */
  digestLockDays?: number;
  /** When the digest writer seals: an EventBridge `rate(...)` expression. Default `rate(1 hour)`. */
  digestSchedule?: string;
}

/** The audit settings of a stage, defaults applied. */
export interface AuditSettings {
  retentionYears: number;
  /** The digest bucket's default retention (Object Lock, COMPLIANCE). */
  digestLock: { years: number } | { days: number };
  digestSchedule: string;
  /** Seconds between two scheduled digests: the period of the missing-digest alarm. */
  digestPeriodSeconds: number;
}

export const DEFAULT_AUDIT_RETENTION_YEARS = 7;
export const DEFAULT_DIGEST_SCHEDULE = "rate(1 hour)";

export interface MigrationConfig {
  stages: Record<string, StageConfig>;
  /** Every stage not listed in `stages` (personal dev stages, rehearsals). */
  otherStages: StageConfig;
}

/** Everything the stacks need to know about the stage being deployed. */
export interface StageContext extends StageConfig {
  stage: string;
  /** The region the stage is pinned to (sst.config.ts). */
  region: string;
  adopt: boolean;
  names: TableNames;
  /** Production safety: deletion protection and Pulumi `protect` on every table, the key and the bucket. */
  protect: boolean;
  auditSettings: AuditSettings;
}

const TOPIC_ARN = /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/** Refuses an alarm destination that cannot work, and a protected stage without one. */
function checkAlarms(stage: string, region: string, protect: boolean, alarms: AlarmDestination | undefined): string[] {
  const problems: string[] = [];
  const where = `migration.config.ts: stage "${stage}"`;
  for (const address of alarms?.email ?? [])
    if (!EMAIL.test(address)) problems.push(`${where}: alarms.email "${address}" is not an e-mail address`);
  if (alarms?.topicArn !== undefined) {
    const topicRegion = TOPIC_ARN.exec(alarms.topicArn)?.[1];
    if (!topicRegion) problems.push(`${where}: alarms.topicArn "${alarms.topicArn}" is not an SNS topic ARN`);
    else if (topicRegion !== region) {
      problems.push(
        `${where}: alarms.topicArn is in ${topicRegion}, the stage deploys to ${region}; ` +
          "CloudWatch alarms notify topics of their own region only",
      );
    }
  }
  if (protect && !alarms?.email?.length && !alarms?.topicArn) {
    problems.push(
      `${where} has no alarm destination, so every alarm would notify nobody: set alarms.email ` +
        `(addresses; each confirms once) or alarms.topicArn (an existing SNS topic in ${region})`,
    );
  }
  return problems;
}

export class StageConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`deploy refused by the stage configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "StageConfigError";
  }
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const UNIT_SECONDS: Record<string, number> = { minute: 60, hour: 3600, day: 86_400 };

/** The audit settings, or the problems of the stage's `audit` config. */
function auditSettings(stage: string, protect: boolean, audit: AuditConfig = {}): AuditSettings | string[] {
  const where = `migration.config.ts: stage "${stage}"`;
  const problems: string[] = [];
  const whole = (n: unknown, min: number, max: number) => Number.isInteger(n) && Number(n) >= min && Number(n) <= max;
  const retentionYears = audit.retentionYears ?? DEFAULT_AUDIT_RETENTION_YEARS;
  if (!whole(retentionYears, 1, 100))
    problems.push(`${where}: audit.retentionYears must be a whole number from 1 to 100, got ${retentionYears}`);
  if (audit.digestLockDays !== undefined && !whole(audit.digestLockDays, 1, 36_500))
    problems.push(`${where}: audit.digestLockDays must be a whole number of days from 1, got ${audit.digestLockDays}`);
  if (audit.digestLockDays !== undefined && protect) {
    problems.push(
      `${where}: audit.digestLockDays is refused on a protected stage: its digests stay locked for the whole ` +
        `audit retention (audit.retentionYears, ${retentionYears} years)`,
    );
  }
  const digestSchedule = audit.digestSchedule ?? DEFAULT_DIGEST_SCHEDULE;
  const rate = RATE.exec(digestSchedule);
  const count = Number(rate?.[1]);
  const unit = rate?.[2]?.replace(/s$/, "") ?? "";
  // EventBridge wants the singular for 1 and the plural otherwise; the alarm's period must be 1 min to 1 day.
  const periodSeconds = count * (UNIT_SECONDS[unit] ?? Number.NaN);
  if (!rate || (count === 1) !== (rate[2] === unit) || !(periodSeconds >= 60 && periodSeconds <= 86_400)) {
    problems.push(
      `${where}: audit.digestSchedule "${digestSchedule}" must be a rate from rate(1 minute) to rate(1 day), ` +
        'e.g. "rate(1 hour)" or "rate(15 minutes)" (the missing-digest alarm needs a fixed period)',
    );
  }
  if (problems.length > 0) return problems;
  return {
    retentionYears,
    digestLock: audit.digestLockDays !== undefined ? { days: audit.digestLockDays } : { years: retentionYears },
    digestSchedule,
    digestPeriodSeconds: periodSeconds,
  };
}

export function stageContext(config: MigrationConfig, stage: string, protect: boolean, region: string): StageContext {
  const stageConfig = config.stages[stage] ?? config.otherStages;
  if (!DEPLOY_PHASES.includes(stageConfig.phase)) {
    throw new StageConfigError([
      `migration.config.ts: stage "${stage}" has phase "${stageConfig.phase}"; ` +
        `expected one of ${DEPLOY_PHASES.join(", ")}`,
    ]);
  }
  const audit = auditSettings(stage, protect, stageConfig.audit);
  const problems = [
    ...checkAlarms(stage, region, protect, stageConfig.alarms),
    ...sweepMachineProblems(stageConfig.sweep ?? {}).map((p) => `migration.config.ts: stage "${stage}": sweep.${p}`),
    ...(Array.isArray(audit) ? audit : []),
  ];
  if (problems.length > 0 || Array.isArray(audit)) throw new StageConfigError(problems);
  const adopt = stageConfig.existingTables === "adopt";
  const names = defaultTableNames(adopt ? "" : `${stage}-`);
  if (stageConfig.auditTableName) names.audit = stageConfig.auditTableName;
  return { ...stageConfig, stage, region, adopt, names, protect, auditSettings: audit };
}
