// Per-stage deploy settings, read from the checked-in migration.config.ts at the repository root.
import { defaultTableNames, type TableNames } from "@sitelogix/core/names";
import { PHASES, type Phase } from "@sitelogix/core/schema";

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
  /** An address that gets the alarms (SNS e-mail subscription; AWS asks it to confirm once). */
  alarmEmail?: string;
}

export interface MigrationConfig {
  stages: Record<string, StageConfig>;
  /** Every stage not listed in `stages` (personal dev stages, rehearsals). */
  otherStages: StageConfig;
}

/** Everything the stacks need to know about the stage being deployed. */
export interface StageContext extends StageConfig {
  stage: string;
  adopt: boolean;
  names: TableNames;
  /** Production safety: deletion protection and Pulumi `protect` on every table. */
  protect: boolean;
}

export function stageContext(config: MigrationConfig, stage: string, protect: boolean): StageContext {
  const stageConfig = config.stages[stage] ?? config.otherStages;
  if (!DEPLOY_PHASES.includes(stageConfig.phase)) {
    throw new Error(`migration.config.ts: stage "${stage}" has phase "${stageConfig.phase}"; expected one of ${DEPLOY_PHASES.join(", ")}`);
  }
  const adopt = stageConfig.existingTables === "adopt";
  const names = defaultTableNames(adopt ? "" : `${stage}-`);
  if (stageConfig.auditTableName) names.audit = stageConfig.auditTableName;
  return { ...stageConfig, stage, adopt, names, protect };
}
