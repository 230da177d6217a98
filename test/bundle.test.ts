// What the Lambda functions bundle: stream decoding and per-item ordering, never the local
// event-source mapping (packages/core/src/local-esm/), and not the core barrel, which would reach
// every module of the engine. Bundled as SST bundles a function: esbuild, platform node, ESM,
// minified, the AWS SDK included.
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

async function bundledModules(handler: string): Promise<string[]> {
  const result = await build({
    entryPoints: [`packages/functions/src/${handler}.ts`],
    absWorkingDir: ROOT,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    minify: true,
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  // Every module the bundle reached, whether or not tree shaking kept code of it.
  return Object.keys(result.metafile.inputs).filter((path) => path.startsWith("packages/"));
}

describe("Lambda bundles", () => {
  for (const handler of ["normalizer", "audit-logger"]) {
    it(`${handler}: stream decoding, without the local event-source mapping or the core barrel`, async () => {
      const modules = await bundledModules(handler);
      expect(modules).toContain("packages/core/src/streams.ts");
      expect(modules.filter((path) => path.startsWith("packages/core/src/local-esm/"))).toEqual([]);
      expect(modules).not.toContain("packages/core/src/index.ts");
    });
  }

  it("digest-writer: sealing, the KMS signer and the S3 store, without the local mapping or the barrel", async () => {
    const modules = await bundledModules("digest-writer");
    expect(modules).toContain("packages/core/src/audit/seal.ts");
    expect(modules).toContain("packages/core/src/audit/signer.ts");
    expect(modules).toContain("packages/core/src/audit/digest-store.ts");
    expect(modules.filter((path) => path.startsWith("packages/core/src/local-esm/"))).toEqual([]);
    expect(modules).not.toContain("packages/core/src/index.ts");
  });

  it("sweep-worker: the segment worker and the applier; no local event-source mapping, barrel or CLI", async () => {
    const modules = await bundledModules("sweep-worker");
    expect(modules).toContain("packages/core/src/applier.ts");
    expect(modules.some((path) => path.startsWith("packages/core/src/sweep"))).toBe(true);
    expect(modules.filter((path) => path.startsWith("packages/core/src/local-esm/"))).toEqual([]);
    expect(modules.filter((path) => path.startsWith("packages/cli/"))).toEqual([]);
    expect(modules).not.toContain("packages/core/src/index.ts");
  });
});
