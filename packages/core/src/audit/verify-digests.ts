// The digests as verification reads them: every digest checked (signature, sequence, link), then
// the point each chain was last sealed at (count and newest hash, from the latest digest listing
// it). One small record per sealed chain is held in memory; the digests' parts are read one at a time.
import type { DigestStore } from "./digest-store.js";
import { checkDigests, DIGEST_PREFIX, isDigestName, partHeads } from "./digest.js";
import type { ChainProblem, SealedPoint } from "./verify-chain.js";

export interface SealedPoints {
  points: Map<string, SealedPoint & { keys: Record<string, string>; part: string }>;
  count: number;
  latest: string | null;
  /** The end of the time range the latest digest seals. */
  sealedTo: string | null;
}

/** Reads and checks every digest of `store`, reporting each problem, and returns the sealed points. */
export async function sealedPoints(
  store: DigestStore,
  publicKeyPem: () => Promise<string>,
  auditTable: string,
  problem: (p: ChainProblem) => void,
): Promise<SealedPoints> {
  const result: SealedPoints = { points: new Map(), count: 0, latest: null, sealedTo: null };
  const names: string[] = [];
  for await (const name of store.list(DIGEST_PREFIX)) if (isDigestName(name)) names.push(name);
  if (names.length === 0) return result;
  const pem = await publicKeyPem();
  const digestProblem = (p: { digest: string; problem: string }) =>
    problem({ table: "", keys: {}, digest: p.digest, problem: p.problem });
  const files = async function* () {
    for (const name of names) yield { name, bytes: await store.get(name) };
  };
  for await (const digest of checkDigests(files(), pem, digestProblem, { auditTable })) {
    result.count++;
    result.latest = digest.name;
    result.sealedTo = digest.body.range.to;
    // A digest whose signature fails says nothing trustworthy about the chains.
    if (!digest.authentic) continue;
    for await (const { part, head } of partHeads(digest, (name) => store.get(name), digestProblem)) {
      const { count, lastHash, keys } = head;
      result.points.set(head.entity, { count, lastHash, keys, part, digest: digest.name });
    }
  }
  return result;
}
