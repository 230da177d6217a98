// Offline verification of an export with its proof and the public key alone (no AWS access): the
// export file against its SHA-256, the digests' signatures and links from the first, the head lists
// against the digests, each record's proof entries hashed again and linked up to the head a digest
// sealed, and every exported entry against its proof entry. Exported entries the proof does not seal
// (recorded after the latest digest) are reported as unsealed, not as tampering.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { entryHash } from "./chain.js";
import { checkDigests, partHeads, type CheckedDigest } from "./digest.js";
import { entityId, type AuditEntry } from "./entry.js";
import { entryJson } from "./export.js";
import { entryOfProof, proofFileOf, type ProofLine } from "./export-proof.js";
import { canonicalJson } from "./values.js";
import type { ChainProblem, SealedPoint } from "./verify-chain.js";
import { emptyReport, type VerifyReport } from "./verify.js";

async function* lines(file: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of rl) if (line.trim()) yield line;
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex");
const entryKey = (entity: string, sequenceNumber: string) => `${entity}\n${sequenceNumber}`;

export async function verifyExport(
  file: string,
  publicKeyPem: string,
  options: { onProblem?: (p: ChainProblem) => void } = {},
): Promise<VerifyReport> {
  const { report, problem } = emptyReport(options.onProblem);
  const fileProblem = (text: string) => problem({ table: "", keys: {}, problem: text });

  const recorded = await readFile(`${file}.sha256`, "utf8").catch(() => undefined);
  if (recorded !== undefined) {
    const actual = createHash("sha256")
      .update(await readFile(file))
      .digest("hex");
    if (recorded.split(/\s+/)[0] !== actual) fileProblem("export file altered: its SHA-256 differs from <file>.sha256");
  }

  const digests: { name: string; bytes: Uint8Array }[] = [];
  const parts = new Map<string, Uint8Array>();
  const points = new Map<string, SealedPoint>();
  /** Hash of the JSON document of every entry the proof seals. */
  const sealedDocs = new Map<string, string>();
  let pointsBuilt = false;
  const buildPoints = async () => {
    pointsBuilt = true;
    const digestProblem = (p: { digest: string; problem: string }) =>
      problem({ table: "", keys: {}, digest: p.digest, problem: p.problem });
    const files = async function* () {
      yield* digests;
    };
    const checked: CheckedDigest[] = [];
    for await (const d of checkDigests(files(), publicKeyPem, digestProblem)) {
      checked.push(d);
      report.digests = { count: checked.length, latest: d.name, sealedTo: d.body.range.to };
    }
    for (const d of checked) {
      if (!d.authentic) continue;
      // The proof carries only the head lists of exported records: others are absent, not missing.
      const present = { ...d, body: { ...d.body, parts: d.body.parts.filter((p) => parts.has(p.name)) } };
      for await (const { head } of partHeads(present, async (name) => parts.get(name), digestProblem)) {
        points.set(head.entity, { count: head.count, lastHash: head.lastHash, digest: d.name });
      }
    }
  };

  let chain: { entity: string; prev: AuditEntry; point: SealedPoint } | undefined;
  const endChain = () => {
    if (chain && chain.prev.position !== chain.point.count) {
      const { table, keys, position } = chain.prev;
      problem({ table, keys, position, digest: chain.point.digest, problem: "proof ends before the sealed position" });
    }
    chain = undefined;
  };
  for await (const text of lines(proofFileOf(file))) {
    const line = JSON.parse(text) as ProofLine;
    if (line.kind === "digest") digests.push({ name: line.name, bytes: Buffer.from(line.text, "utf8") });
    else if (line.kind === "part") parts.set(line.name, Buffer.from(line.text, "utf8"));
    else if (line.kind === "entry") {
      if (!pointsBuilt) await buildPoints();
      const entry = entryOfProof(line.entry);
      const entity = entityId(entry.table, entry.keys);
      const at = {
        table: entry.table,
        keys: entry.keys,
        position: entry.position,
        sequenceNumber: entry.sequenceNumber,
      };
      if (chain?.entity !== entity) {
        endChain();
        const point = points.get(entity);
        if (!point) {
          problem({ ...at, problem: "proof entry of a record no digest in the proof seals" });
          continue;
        }
        report.chains++;
        chain = { entity, prev: entry, point };
      } else if (entry.position !== chain.prev.position + 1 || entry.prevHash !== chain.prev.hash) {
        problem({ ...at, problem: "proof entry does not link to the one before it" });
      }
      chain.prev = entry;
      if (entryHash(entry) !== entry.hash)
        problem({ ...at, problem: "entry altered: its content does not match its hash" });
      if (entry.position === chain.point.count && entry.hash !== chain.point.lastHash)
        problem({ ...at, digest: chain.point.digest, problem: `entry does not match ${chain.point.digest}` });
      sealedDocs.set(entryKey(entity, entry.sequenceNumber), sha(canonicalJson(entryJson(entry))));
    }
  }
  if (!pointsBuilt) await buildPoints();
  endChain();

  for await (const text of lines(file)) {
    let doc: Record<string, unknown> & { table: string; keys: Record<string, string> };
    try {
      doc = JSON.parse(text);
    } catch {
      throw new Error(`${file} is not an ndjson export (one JSON entry per line): only those can be verified`);
    }
    report.entries++;
    const key = entryKey(entityId(doc.table, doc.keys), String(doc.sequenceNumber));
    const sealed = sealedDocs.get(key);
    if (sealed === undefined) {
      report.unsealed.entries++;
      const at = String(doc.recordedAt);
      if (report.unsealed.oldestRecordedAt === null || at < report.unsealed.oldestRecordedAt)
        report.unsealed.oldestRecordedAt = at;
    } else if (sealed !== sha(canonicalJson(doc))) {
      problem({
        table: doc.table,
        keys: doc.keys,
        position: Number(doc.position),
        sequenceNumber: String(doc.sequenceNumber),
        problem: "exported entry differs from the sealed entry in the proof",
      });
    }
  }
  if (report.unsealed.oldestRecordedAt)
    report.unsealed.ageSeconds = Math.round((Date.now() - Date.parse(report.unsealed.oldestRecordedAt)) / 1000);
  return report;
}
