// What the program reads from outside its own code: the checked-in phase config and the live tables
// (with the deployer's credentials). The infra tests replace both to run every stage and phase.
import type { TableNames } from "@sitelogix/core/names";
import migrationConfig from "../migration.config";
import type { MigrationConfig } from "./config";
import { awsLiveTables, type LiveTables } from "./deploy-plan";

export const inputs: { config: MigrationConfig; liveTables: (names: TableNames) => LiveTables } = {
  config: migrationConfig,
  liveTables: (names) => awsLiveTables(names),
};
