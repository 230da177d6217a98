// The whole app for one stage: check the deploy against the live tables and the ledger, then
// declare the tables, the audit trail and its digests, the stream functions and the distributed sweep.
import { audit } from "./audit";
import { stageContext } from "./config";
import { planDeploy } from "./deploy-plan";
import { digests } from "./digests";
import { inputs } from "./inputs";
import { customerKeys, migrator } from "./migrator";
import { announceIndexChanges } from "./phase-events";
import { distributedSweep } from "./sweep";
import { tables } from "./tables";

/** The region sst.config.ts pins for this stage. */
function pinnedRegion(): string {
  const region = ($app.providers?.aws as { region?: unknown } | undefined)?.region;
  if (typeof region !== "string")
    throw new Error(`sst.config.ts pins no AWS region for stage "${$app.stage}" (providers.aws.region)`);
  return region;
}

export async function deploy() {
  const ctx = stageContext(inputs.config, $app.stage, $app.protect, pinnedRegion());
  const live = inputs.liveTables(ctx.names);
  const plan = await planDeploy({ phase: ctx.phase, names: ctx.names, adopt: ctx.adopt, live }).finally(() =>
    live.close(),
  );
  const declared = { ...tables(ctx, plan), ...audit(ctx) };
  const { topicArn } = migrator(ctx, declared, plan);
  distributedSweep(ctx, declared, { topicArn, customerKeys: (logical) => customerKeys(ctx, plan, logical) });
  const phaseEvents = announceIndexChanges(ctx.stage, plan, declared, topicArn);
  const auditDigests = digests(ctx, declared.audit, topicArn);
  return {
    phase: ctx.phase,
    region: ctx.region,
    tables: ctx.names,
    indexChanges: plan.indexChanges.map((c) => `${c.action} ${c.index} on ${c.tableName}`),
    phaseEvents,
    // What an operator sets SITELOGIX_AUDIT_KMS_KEY_ID / SITELOGIX_AUDIT_DIGEST_BUCKET to outside `sst shell`.
    auditDigests: { keyId: auditDigests.key.arn, bucket: auditDigests.bucket.bucket, writer: auditDigests.writer },
  };
}
