/// <reference path="./.sst/platform/config.d.ts" />

export default $config({
  app(input) {
    // The region of each stage, pinned: neither a deploy nor `sst shell` follows AWS_REGION or a
    // profile's default. The production tables live in us-east-1; other stages rehearse there too.
    const regions: Record<string, string> = { prod: "us-east-1" };
    const region = regions[input?.stage ?? ""] ?? "us-east-1";
    return {
      name: "sitelogix-migrator",
      removal: input?.stage === "prod" ? "retain" : "remove",
      protect: input?.stage === "prod",
      home: "aws",
      providers: { aws: { region } },
    };
  },
  async run() {
    // The phase comes from migration.config.ts; the deploy refuses a phase whose gate is closed.
    const { deploy } = await import("./stacks/app");
    return deploy();
  },
});
