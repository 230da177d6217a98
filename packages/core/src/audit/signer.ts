// Who signs digests. A signer holds a private key nobody with write access to the audit table has:
// on AWS an asymmetric KMS key (only the digest writer may call kms:Sign); locally an Ed25519 key
// pair created once per endpoint and kept outside the repository. Verifying needs only the public
// key (PEM), so an auditor can check digests with no access to AWS.
import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetPublicKeyCommand, SignCommand, type KMSClient } from "@aws-sdk/client-kms";

export const ED25519 = "ED25519";
export const ECDSA_SHA_256 = "ECDSA_SHA_256";
const KMS_RAW_LIMIT = 4096;

export interface DigestSigner {
  /** The key's identity as recorded in each digest (a KMS key id or ARN, or `local:<fingerprint>`). */
  keyId: string;
  /** `ED25519` or `ECDSA_SHA_256`: how `verifyDigestSignature` checks the signature. */
  algorithm: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
  publicKeyPem(): Promise<string>;
}

/** True when `signature` is `algorithm`'s signature of `message` under the public key `pem`. */
export function verifyDigestSignature(
  algorithm: string,
  pem: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new Error("the public key is not a PEM-encoded public key");
  }
  try {
    if (algorithm === ED25519) return verify(null, message, key, signature);
    // KMS signs the SHA-256 of the message (ECDSA, DER-encoded signature): the same as node's sha256 verify.
    if (algorithm === ECDSA_SHA_256) return verify("sha256", message, key, signature);
  } catch {
    return false;
  }
  throw new Error(`unknown signing algorithm ${algorithm}`);
}

/** A short fingerprint of a public key: SHA-256 of its DER encoding, first 16 hex digits. */
export function keyFingerprint(pem: string): string {
  const der = createPublicKey(pem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex").slice(0, 16);
}

/**
 * An Ed25519 signer whose key pair lives in `dir` (created on first use; private key mode 0600,
 * directory 0700). Keep `dir` outside the repository: whoever can read it can sign digests.
 */
export async function localSigner(dir: string): Promise<DigestSigner> {
  const privateFile = join(dir, "digest-signing-key.pem");
  const publicFile = join(dir, "digest-signing-key.pub.pem");
  let privatePem: string;
  let publicPem: string;
  try {
    [privatePem, publicPem] = await Promise.all([readFile(privateFile, "utf8"), readFile(publicFile, "utf8")]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    const pair = generateKeyPairSync("ed25519");
    privatePem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    publicPem = pair.publicKey.export({ type: "spki", format: "pem" }).toString();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // "wx": two processes creating the key at once cannot overwrite each other's; the loser reads the winner's.
    try {
      await writeFile(privateFile, privatePem, { mode: 0o600, flag: "wx" });
      await writeFile(publicFile, publicPem, { mode: 0o644 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      return localSigner(dir);
    }
  }
  const pem = publicPem;
  return {
    keyId: `local:${keyFingerprint(pem)}`,
    algorithm: ED25519,
    sign: async (message) => new Uint8Array(sign(null, message, privatePem)),
    publicKeyPem: async () => pem,
  };
}

/**
 * A KMS signer: an asymmetric ECC_NIST_P256 key used for SIGN_VERIFY. KMS hashes a message of up to
 * 4 KB itself (MessageType RAW); a longer one is hashed here and KMS signs the hash (DIGEST).
 */
export function kmsSigner({ kms, keyId }: { kms: KMSClient; keyId: string }): DigestSigner {
  let pem: Promise<string> | undefined;
  return {
    keyId,
    algorithm: ECDSA_SHA_256,
    async sign(message) {
      const raw = message.length <= KMS_RAW_LIMIT;
      const out = await kms.send(
        new SignCommand({
          KeyId: keyId,
          Message: raw ? message : createHash("sha256").update(message).digest(),
          MessageType: raw ? "RAW" : "DIGEST",
          SigningAlgorithm: ECDSA_SHA_256,
        }),
      );
      if (!out.Signature) throw new Error(`KMS returned no signature for key ${keyId}`);
      return out.Signature;
    },
    publicKeyPem() {
      pem ??= kms.send(new GetPublicKeyCommand({ KeyId: keyId })).then((out) => {
        if (!out.PublicKey) throw new Error(`KMS returned no public key for key ${keyId}`);
        const der = Buffer.from(out.PublicKey).toString("base64");
        return `-----BEGIN PUBLIC KEY-----\n${der.match(/.{1,64}/g)!.join("\n")}\n-----END PUBLIC KEY-----\n`;
      });
      return pem;
    },
  };
}
