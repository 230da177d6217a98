// The whole app for one stage: check the deploy against the live tables and the ledger, then
// declare the tables, the audit trail and the stream functions.
import { audit } from "./audit";
import { stageContext } from "./config";
import { planDeploy } from "./deploy-plan";
import { inputs } from "./inputs";
import { migrator } from "./migrator";
import { tables } from "./tables";

export async function deploy() {
  const ctx = stageContext(inputs.config, $app.stage, $app.protect);
  const live = inputs.liveTables(ctx.names);
  const plan = await planDeploy({ phase: ctx.phase, names: ctx.names, adopt: ctx.adopt, live }).finally(() => live.close());
  const declared = { ...tables(ctx), ...audit(ctx) };
  migrator(ctx, declared);
  return {
    phase: ctx.phase,
    tables: ctx.names,
    indexChanges: plan.indexChanges.map((c) => `${c.action} ${c.index} on ${c.tableName}`),
  };
}
