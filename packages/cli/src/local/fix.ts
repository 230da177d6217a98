// The rehearsal's "application fix": what the application team does about the violations `verify`
// reports — data the migrator must never fix itself (a numeric name, a wrongly typed date, an
// unknown status). Each fix is an ordinary application write, so the normalizer then does the rest.
import { paginateScan, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import {
  derivePatchFor,
  isErrorNamed,
  type Item,
  type SiteLogixTable,
  type TableNames,
  type Violation,
} from "@sitelogix/core";

export const FIXED_BY = "ops:data-fix";

/** What the application writes for one violation: SET a value or REMOVE the attribute. */
function fixFor(item: Item, v: Violation): { set?: [string, string]; remove?: string } {
  switch (v.problem) {
    case "source-not-string":
      return { set: [v.at, String(item[v.at])] };
    case "unmapped-value":
      // The team decides what an unknown employment status means; here: not currently working.
      return { set: [v.at, "inactive"] };
    case "target-not-string":
    case "target-empty":
      // A wrongly typed or empty copy is dropped; the normalizer derives it again if it can.
      return { remove: v.at };
    case "no-source":
      return { set: ["createdAt", new Date().toISOString()] };
  }
}

export interface FixSummary {
  items: number;
  byProblem: Record<string, number>;
}

/** Scans the tables and fixes every item whose rules report a violation, as the application would. */
export async function applyApplicationFix(
  doc: DynamoDBDocumentClient,
  names: TableNames,
  tables: readonly SiteLogixTable[],
): Promise<FixSummary> {
  const summary: FixSummary = { items: 0, byProblem: {} };
  for (const table of tables) {
    for await (const page of paginateScan({ client: doc }, { TableName: names[table] })) {
      for (const item of (page.Items ?? []) as Item[]) {
        const { key, violations } = await derivePatchFor(doc, table, names[table], item, { mode: "sweep" });
        if (violations.length === 0) continue;
        const fixes = violations.map((v) => fixFor(item, v));
        const sets = fixes.flatMap((f) => (f.set ? [f.set] : []));
        const removes = [...new Set(fixes.flatMap((f) => (f.remove ? [f.remove] : [])))];
        const attrNames: Record<string, string> = { "#u": "updatedAt", "#by": "lastModifiedBy", "#v": "version" };
        const values: Record<string, unknown> = { ":u": new Date().toISOString(), ":by": FIXED_BY, ":one": 1 };
        const setClauses = [
          "#u = :u",
          "#by = :by",
          ...sets.map(([attr, value], i) => {
            attrNames[`#s${i}`] = attr;
            values[`:s${i}`] = value;
            return `#s${i} = :s${i}`;
          }),
        ];
        const removeClause = removes
          .map((attr, i) => {
            attrNames[`#r${i}`] = attr;
            return `#r${i}`;
          })
          .join(", ");
        const remove = removeClause ? ` REMOVE ${removeClause}` : "";
        try {
          await doc.send(
            new UpdateCommand({
              TableName: names[table],
              Key: key,
              UpdateExpression: `SET ${setClauses.join(", ")} ADD #v :one${remove}`,
              ConditionExpression: "attribute_exists(PK)",
              ExpressionAttributeNames: attrNames,
              ExpressionAttributeValues: values,
            }),
          );
        } catch (err) {
          // Deleted by live traffic in the meantime: nothing to fix.
          if (isErrorNamed(err, "ConditionalCheckFailedException")) continue;
          throw err;
        }
        summary.items++;
        for (const v of violations)
          summary.byProblem[`${v.at} ${v.problem}`] = (summary.byProblem[`${v.at} ${v.problem}`] ?? 0) + 1;
      }
    }
  }
  return summary;
}
