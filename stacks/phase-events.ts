// The deploy's own phase event: a GSI it created is ACTIVE (or one it deleted is gone). The provider
// returns from a table update only once its new index is ACTIVE, so the table's outputs resolve at
// that moment — gh-ost's on-success hook. Sent with the deployer's credentials, never on a preview.
// The result is a stack output, so the deploy waits for the notifications before it completes.
import { SNSClient } from "@aws-sdk/client-sns";
import { Notifier } from "@sitelogix/core/notifier";
import { deployerConfig, type DeployPlan } from "./deploy-plan";
import type { DeclaredTable } from "./tables";

export function announceIndexChanges(
  stage: string,
  plan: Pick<DeployPlan, "indexChanges">,
  tables: Record<string, DeclaredTable>,
  topicArn: $util.Input<string>,
): $util.Output<string[]> {
  const sent = plan.indexChanges.map((change) =>
    $resolve([tables[change.table]!.table.arn, topicArn]).apply(async ([, arn]) => {
      if ($dev || $util.runtime.isDryRun()) return `${change.index} on ${change.tableName}: announced when deployed`;
      const active = change.action === "create";
      const notifier = new Notifier(arn, new SNSClient(deployerConfig()), `sitelogix-migrator ${stage}`);
      const result = await notifier.notify({
        kind: active ? "index-active" : "index-deleted",
        summary: `index ${active ? "ACTIVE" : "deleted"}: ${change.index} on ${change.tableName}`,
        details: active
          ? [
              `The deploy built ${change.index} on ${change.tableName}; it is ACTIVE.`,
              "Next: npx sitelogix-migrate status",
            ]
          : [`The deploy deleted ${change.index} from ${change.tableName}.`],
      });
      notifier.close();
      if (result.error)
        $util.log.warn(`phase event for ${change.index} on ${change.tableName} not sent: ${result.error}`);
      const outcome = result.sent ? "notified" : `not notified (${result.error ?? "no topic"})`;
      return `${change.index} on ${change.tableName}: ${outcome}`;
    }),
  );
  return $resolve(sent);
}
