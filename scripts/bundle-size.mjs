// Sizes of the Lambda bundles (BENCHMARKS.md, "Lambda bundles"): each handler bundled with esbuild
// as a function is bundled (platform node, ESM, minified), once with the AWS SDK v3 included and once
// with it external (the Lambda Node.js runtime provides it), and the engine modules each one reaches.
//   node scripts/bundle-size.mjs [repository root, default: this one]
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = process.argv[2] ?? fileURLToPath(new URL("../", import.meta.url));
const HANDLERS = ["normalizer", "audit-logger"];

console.log("| handler | AWS SDK | bytes | packages/core modules reached |");
console.log("|---|---|---|---|");
for (const handler of HANDLERS) {
  for (const sdk of ["included", "external"]) {
    const result = await build({
      entryPoints: [`packages/functions/src/${handler}.ts`],
      absWorkingDir: root,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      minify: true,
      write: false,
      metafile: true,
      logLevel: "silent",
      external: sdk === "external" ? ["@aws-sdk/*", "@smithy/*"] : [],
    });
    const core = Object.keys(result.metafile.inputs).filter((path) => path.startsWith("packages/core/"));
    console.log(
      `| ${handler} | ${sdk} | ${result.outputFiles[0].contents.length.toLocaleString("en-US")} | ${core.length} |`,
    );
  }
}
