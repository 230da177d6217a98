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
}

export interface AlarmDestination {
  /** Addresses subscribed to the stage's topic by e-mail (AWS asks each to confirm once). */
  email?: string[];
  /** An existing SNS topic (in the stage's region) to notify instead of one the stage creates; e-mails subscribe to it. */
  topicArn?: string;
}

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
  /** Production safety: deletion protection and Pulumi `protect` on every table. */
  protect: boolean;
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
        `${where}: alarms.topicArn is in ${topicRegion}, the stage deploys to ${region}; CloudWatch alarms notify topics of their own region only`,
      );
    }
  }
  if (protect && !alarms?.email?.length && !alarms?.topicArn) {
    problems.push(
      `${where} has no alarm destination, so every alarm would notify nobody: set alarms.email (addresses; each confirms once) or alarms.topicArn (an existing SNS topic in ${region})`,
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

export function stageContext(config: MigrationConfig, stage: string, protect: boolean, region: string): StageContext {
  const stageConfig = config.stages[stage] ?? config.otherStages;
  if (!DEPLOY_PHASES.includes(stageConfig.phase)) {
    throw new StageConfigError([
      `migration.config.ts: stage "${stage}" has phase "${stageConfig.phase}"; expected one of ${DEPLOY_PHASES.join(", ")}`,
    ]);
  }
  const problems = [
    ...checkAlarms(stage, region, protect, stageConfig.alarms),
    ...sweepMachineProblems(stageConfig.sweep ?? {}).map((p) => `migration.config.ts: stage "${stage}": sweep.${p}`),
  ];
  if (problems.length > 0) throw new StageConfigError(problems);
  const adopt = stageConfig.existingTables === "adopt";
  const names = defaultTableNames(adopt ? "" : `${stage}-`);
  if (stageConfig.auditTableName) names.audit = stageConfig.auditTableName;
  return { ...stageConfig, stage, region, adopt, names, protect };
}
