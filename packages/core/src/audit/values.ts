// Attribute values as the audit holds them: stream images validated and brought to the SDK's form,
// a canonical encoding (one byte string per value, whatever its notation) for hashing, sizes, and
// plain JSON for output.
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { exactNumber } from "../clients.js";

export type AttributeMap = Record<string, AttributeValue>;

/** An attribute value in Lambda's event form (binary as base64) or the SDK's (binary as bytes). */
export type RawImage = Record<string, unknown>;

const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** An image that is not DynamoDB's; the message names the attribute, never its value. */
export class MalformedImage extends Error {}

function bytes(value: unknown, path: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string" && BASE64.test(value)) return new Uint8Array(Buffer.from(value, "base64"));
  throw new MalformedImage(`${path}: binary value is neither bytes nor base64`);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Validates one attribute value and brings it to the SDK's form (binary as bytes). */
function normalizeValue(raw: unknown, path: string): AttributeValue {
  if (!isObject(raw)) throw new MalformedImage(`${path}: not an attribute value`);
  const present = Object.entries(raw).filter(([, v]) => v !== undefined);
  if (present.length !== 1) throw new MalformedImage(`${path}: an attribute value has exactly one type`);
  const [type, v] = present[0]!;
  const strings = (x: unknown): x is string[] =>
    Array.isArray(x) && x.length > 0 && x.every((s) => typeof s === "string");
  switch (type) {
    case "S":
      if (typeof v === "string") return { S: v };
      break;
    case "N":
      if (typeof v === "string" && isNumber(v)) return { N: v };
      break;
    case "B":
      return { B: bytes(v, path) };
    case "SS":
      if (strings(v)) return { SS: [...v] };
      break;
    case "NS":
      if (strings(v) && v.every(isNumber)) return { NS: [...v] };
      break;
    case "BS":
      if (Array.isArray(v) && v.length > 0) return { BS: v.map((b) => bytes(b, path)) };
      break;
    case "M":
      if (isObject(v)) return { M: normalizeImage(v, `${path}.`) };
      break;
    case "L":
      if (Array.isArray(v)) return { L: v.map((x, i) => normalizeValue(x, `${path}[${i}]`)) };
      break;
    case "NULL":
      if (v === true) return { NULL: true };
      break;
    case "BOOL":
      if (typeof v === "boolean") return { BOOL: v };
      break;
  }
  throw new MalformedImage(`${path}: invalid ${type} value`);
}

/**
 * A stream image (Lambda or Streams API form) as an SDK attribute map; throws naming the bad
 * attribute, never its value.
 */
export function normalizeImage(raw: RawImage, prefix = ""): AttributeMap {
  return Object.fromEntries(Object.entries(raw).map(([name, v]) => [name, normalizeValue(v, `${prefix}${name}`)]));
}

function isNumber(s: string): boolean {
  const m = NUMBER.exec(s);
  return m !== null && `${m[2] ?? ""}${m[3] ?? ""}`.length > 0;
}

/** A decimal as digits and exponent, so that equal numbers encode equally ("1.50", "15E-1" → "15e-1"). */
export function canonicalNumber(s: string): string {
  const m = NUMBER.exec(s);
  if (!m || !isNumber(s)) throw new MalformedImage(`not a number: ${s.length} characters`);
  const fraction = m[3] ?? "";
  let digits = `${m[2] ?? ""}${fraction}`.replace(/^0+/, "");
  if (digits === "") return "0";
  let exponent = BigInt(m[4] ?? "0") - BigInt(fraction.length);
  const trimmed = digits.replace(/0+$/, "");
  exponent += BigInt(digits.length - trimmed.length);
  digits = trimmed;
  return `${m[1] === "-" ? "-" : ""}${digits}e${exponent}`;
}

export const base64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

/** Typed, order-independent form of a value: sets sorted, numbers canonical, binary as base64. */
function canonicalValue(av: AttributeValue): unknown {
  if (av.S !== undefined) return { S: av.S };
  if (av.N !== undefined) return { N: canonicalNumber(av.N) };
  if (av.B !== undefined) return { B: base64(av.B) };
  if (av.SS !== undefined) return { SS: [...av.SS].sort() };
  if (av.NS !== undefined) return { NS: av.NS.map(canonicalNumber).sort() };
  if (av.BS !== undefined) return { BS: av.BS.map(base64).sort() };
  if (av.M !== undefined) return { M: canonicalMap(av.M) };
  if (av.L !== undefined) return { L: av.L.map(canonicalValue) };
  if (av.NULL !== undefined) return { NULL: true };
  if (av.BOOL !== undefined) return { BOOL: av.BOOL };
  throw new MalformedImage("attribute value of unknown type");
}

export function canonicalMap(map: AttributeMap): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, canonicalValue(v)]));
}

/** JSON with object keys sorted at every level: one byte string per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

export const sameValue = (a: AttributeValue | undefined, b: AttributeValue | undefined) =>
  (a === undefined) === (b === undefined) &&
  (a === undefined || canonicalJson(canonicalValue(a)) === canonicalJson(canonicalValue(b!)));

/** Lambda's event form of a map (binary as base64): how large payloads are serialized. */
export function eventForm(map: AttributeMap): unknown {
  const value = (av: AttributeValue): unknown =>
    av.B !== undefined
      ? { B: base64(av.B) }
      : av.BS !== undefined
        ? { BS: av.BS.map(base64) }
        : av.M !== undefined
          ? { M: eventForm(av.M) }
          : av.L !== undefined
            ? { L: av.L.map(value) }
            : av;
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, value(v)]));
}

/**
 * Approximate stored size of attribute values, rounded up (DynamoDB's rules: names + values + 3 bytes
 * per container element).
 */
export function sizeOf(map: AttributeMap): number {
  const utf8 = (s: string) => Buffer.byteLength(s);
  const value = (av: AttributeValue): number => {
    if (av.S !== undefined) return utf8(av.S);
    if (av.N !== undefined) return av.N.length + 1;
    if (av.B !== undefined) return av.B.length;
    if (av.SS !== undefined) return av.SS.reduce((n, s) => n + utf8(s), 0);
    if (av.NS !== undefined) return av.NS.reduce((n, s) => n + s.length + 1, 0);
    if (av.BS !== undefined) return av.BS.reduce((n, b) => n + b.length, 0);
    if (av.M !== undefined) return 3 + sizeOf(av.M) + Object.keys(av.M).length;
    if (av.L !== undefined) return 3 + av.L.reduce((n, v) => n + value(v) + 1, 0);
    return 1;
  };
  return Object.entries(map).reduce((n, [k, v]) => n + utf8(k) + value(v), 0);
}

/** A key attribute's value as a string (keys are S, N or B). */
export function keyString(av: AttributeValue, name: string): string {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return av.N;
  if (av.B !== undefined) return base64(av.B);
  throw new MalformedImage(`key ${name} is not a scalar`);
}

/**
 * A value as plain JSON: numbers exact (as strings where a JS number would round), binary as base64,
 * sets as arrays.
 */
function plainValue(av: AttributeValue): unknown {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return plainNumber(av.N);
  if (av.B !== undefined) return base64(av.B);
  if (av.SS !== undefined) return [...av.SS];
  if (av.NS !== undefined) return av.NS.map(plainNumber);
  if (av.BS !== undefined) return av.BS.map(base64);
  if (av.M !== undefined) return plainMap(av.M);
  if (av.L !== undefined) return av.L.map(plainValue);
  if (av.BOOL !== undefined) return av.BOOL;
  return null;
}

function plainNumber(n: string): number | string {
  const v = exactNumber(n);
  return typeof v === "number" ? v : v.toString();
}

export const plainMap = (map: AttributeMap) =>
  Object.fromEntries(Object.entries(map).map(([k, v]) => [k, plainValue(v)]));
