// Where digests and their head lists are kept, by name: on AWS an S3 bucket (versioning, Object Lock
// in compliance mode: a stored digest can be neither overwritten nor deleted for the retention),
// locally a directory. Names sort in the order digests were sealed.
import { link, mkdir, readdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, paginateListObjectsV2, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { isErrorNamed } from "../errors.js";

export interface DigestStore {
  /** Where the store is, for messages (`s3://bucket/prefix` or a directory). */
  readonly location: string;
  /** Writes a new object; throws DigestExistsError if the name is taken (digests are never replaced). */
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** The object's bytes, or undefined when there is none of that name. */
  get(name: string): Promise<Uint8Array | undefined>;
  /** Names beginning with `prefix`, in ascending order. */
  list(prefix?: string): AsyncIterable<string>;
}

export class DigestExistsError extends Error {
  constructor(name: string, location: string) {
    super(`${name} already exists in ${location}: another seal ran at the same time; seal again`);
  }
}

const NAME = /^[A-Za-z0-9._-]+$/;
function checkName(name: string): string {
  if (!NAME.test(name)) throw new Error(`invalid digest object name "${name}"`);
  return name;
}

/** A directory of files (created on first write); each file is written whole, then linked into place. */
export function directoryDigestStore(dir: string): DigestStore {
  return {
    location: dir,
    async put(name, bytes) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const file = join(dir, checkName(name));
      const partial = `${file}.${process.pid}.partial`;
      await writeFile(partial, bytes, { mode: 0o600 });
      try {
        await link(partial, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new DigestExistsError(name, dir);
        throw err;
      } finally {
        await unlink(partial);
      }
    },
    async get(name) {
      try {
        return new Uint8Array(await readFile(join(dir, checkName(name))));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
    },
    async *list(prefix = "") {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      yield* names.filter((n) => n.startsWith(prefix) && NAME.test(n) && !n.endsWith(".partial")).sort();
    },
  };
}

/** Objects `<prefix><name>` of an S3 bucket (ListObjectsV2 returns keys in ascending order). */
export function s3DigestStore({
  s3,
  bucket,
  prefix = "",
}: {
  s3: S3Client;
  bucket: string;
  prefix?: string;
}): DigestStore {
  return {
    location: `s3://${bucket}/${prefix}`,
    async put(name, bytes) {
      try {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `${prefix}${checkName(name)}`,
            Body: bytes,
            // Object Lock requires an integrity checksum on every put; a digest is never replaced.
            ChecksumAlgorithm: "SHA256",
            ContentType: "application/json",
            IfNoneMatch: "*",
          }),
        );
      } catch (err) {
        if (isErrorNamed(err, "PreconditionFailed", "ConditionalRequestConflict"))
          throw new DigestExistsError(name, `s3://${bucket}/${prefix}`);
        throw err;
      }
    },
    async get(name) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${checkName(name)}` }));
        return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      } catch (err) {
        if (isErrorNamed(err, "NoSuchKey") || isErrorNamed(err, "NotFound")) return undefined;
        throw err;
      }
    },
    async *list(namePrefix = "") {
      for await (const page of paginateListObjectsV2(
        { client: s3 },
        { Bucket: bucket, Prefix: `${prefix}${namePrefix}` },
      )) {
        for (const object of page.Contents ?? []) if (object.Key) yield object.Key.slice(prefix.length);
      }
    },
  };
}
