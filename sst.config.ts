/// <reference path="./.sst/platform/config.d.ts" />

export default $config({
  app(input) {
    return {
      name: "sitelogix-migrator",
      removal: input?.stage === "prod" ? "retain" : "remove",
      protect: input?.stage === "prod",
      home: "aws",
    };
  },
  async run() {
    // The phase comes from migration.config.ts; the deploy refuses a phase whose gate is closed.
    const { deploy } = await import("./stacks/app");
    return deploy();
  },
});
