// The byte-exact constructions of docs/protocol.md (§1, §5, §6, §8), with Node's built-in crypto:
// length-prefixed fields, key ids, the envelope signing input and hash, the per-signer chain,
// audit entry hashes and signed tree heads. Nothing here talks to the network.

import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';

const ENVELOPE_TAG = 'yrd-interop/v1/envelope';
const AUDIT_ENTRY_TAG = 'yrd-interop/v1/audit-entry';
const TREE_HEAD_TAG = 'yrd-interop/v1/tree-head';
export const ZERO_HASH = Buffer.alloc(32);

/** SHA-256 of bytes (§1). */
export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest();
}

/** u32be(n) (§1). */
export function u32be(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** u64be(n), n a BigInt or something BigInt() accepts (§1). */
export function u64be(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** i64be(n): two's complement (§1). */
export function i64be(n) {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
}

/** LP(x) = u32be(len(x)) || x, len in bytes (§1). Strings are taken as UTF-8. */
export function lp(x) {
  const bytes = typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x);
  return Buffer.concat([u32be(bytes.length), bytes]);
}

/** The raw 32-byte public key of an Ed25519 KeyObject (public or private). */
export function rawPublicKey(key) {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return Buffer.from(pub.export({ format: 'jwk' }).x, 'base64url');
}

/** A public KeyObject from a raw 32-byte Ed25519 key. */
export function publicKeyFromRaw(raw) {
  if (raw.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** A private KeyObject from a 32-byte Ed25519 seed (RFC 8032). */
export function privateKeyFromSeed(seed) {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** Key id: the first 32 lower-case hex characters of SHA-256(raw public key) (§5). */
export function keyIdOf(rawPublic) {
  return sha256(rawPublic).toString('hex').slice(0, 32);
}

/** Ed25519 signature (pure, RFC 8032) over bytes. */
export function ed25519Sign(privateKey, bytes) {
  return sign(null, bytes, privateKey);
}

/** Whether an Ed25519 signature over bytes verifies with a raw public key. */
export function ed25519Verify(rawPublic, bytes, signature) {
  if (!signature || signature.length !== 64) return false;
  return verify(null, bytes, publicKeyFromRaw(rawPublic), signature);
}

/** A Timestamp {seconds, nanos} (seconds as a decimal string, as the wire's int64) from a Date. */
export function timestampOf(date) {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** Microseconds since the epoch of a wire Timestamp, as a BigInt (§8.1, §8.2). */
export function micros(ts) {
  return BigInt(ts.seconds) * 1_000_000n + BigInt(Math.trunc(Number(ts.nanos || 0) / 1000));
}

/**
 * The envelope signing input (§6.2) of {content_type, key_id, sequence, previous_hash,
 * sign_time: {seconds, nanos}, payload}.
 */
export function signingInput(env) {
  return Buffer.concat([
    lp(ENVELOPE_TAG),
    lp(env.content_type),
    lp(env.key_id),
    lp(u64be(env.sequence)),
    lp(env.previous_hash),
    lp(Buffer.concat([i64be(env.sign_time.seconds), u32be(Number(env.sign_time.nanos || 0))])),
    lp(sha256(env.payload)),
  ]);
}

/** envelope_hash = SHA-256(signing_input || LP(signature)) (§6.4). */
export function envelopeHash(env) {
  return sha256(Buffer.concat([signingInput(env), lp(env.signature)]));
}

/**
 * Verifies an envelope as a third party (§6.3): the key id must be the id of the public key
 * used, and the signature must verify over the signing input.
 */
export function verifyEnvelope(env, rawPublic) {
  if (env.key_id !== keyIdOf(rawPublic)) return false;
  return ed25519Verify(rawPublic, signingInput(env), env.signature);
}

/**
 * One signing key and its chain head (§6.5): sign() makes the next envelope of the chain and
 * moves the head; rewind() puts it back after the gateway refused an envelope.
 */
export class EnvelopeSigner {
  constructor(privateKey, { sequence = 0n, previousHash = ZERO_HASH } = {}) {
    this.privateKey = privateKey;
    this.publicKey = rawPublicKey(privateKey);
    this.keyId = keyIdOf(this.publicKey);
    this.sequence = BigInt(sequence);
    this.previousHash = Buffer.from(previousHash);
  }

  /** The chain head: [last sequence, last envelope hash]. */
  head() {
    return [this.sequence, this.previousHash];
  }

  rewind(sequence, previousHash) {
    this.sequence = BigInt(sequence);
    this.previousHash = Buffer.from(previousHash);
  }

  /** The next envelope of this key's chain over payload (bytes kept exactly as signed). */
  sign(contentType, payload, when = new Date()) {
    const env = {
      content_type: contentType,
      payload: Buffer.from(payload),
      key_id: this.keyId,
      sequence: String(this.sequence + 1n),
      previous_hash: this.previousHash,
      sign_time: timestampOf(when),
    };
    env.signature = ed25519Sign(this.privateKey, signingInput(env));
    this.sequence += 1n;
    this.previousHash = envelopeHash(env);
    return env;
  }
}

/** entry_hash of an audit entry as received (§8.1). */
export function auditEntryHash(e) {
  return sha256(
    Buffer.concat([
      lp(AUDIT_ENTRY_TAG),
      lp(u64be(e.sequence)),
      lp(e.kind),
      lp(e.subject),
      lp(e.actor_region),
      lp(e.actor),
      lp(e.detail),
      lp(e.previous_hash),
      lp(i64be(micros(e.create_time))),
    ]),
  );
}

/** The bytes the gateway signs for a tree head (§8.2). */
export function treeHeadInput(size, headHash, signTime) {
  return Buffer.concat([lp(TREE_HEAD_TAG), lp(u64be(size)), lp(headHash), lp(i64be(micros(signTime)))]);
}

/** Whether a SignedTreeHead verifies with a raw gateway public key (key id checked first). */
export function verifyTreeHead(head, rawPublic) {
  if (head.key_id !== keyIdOf(rawPublic)) return false;
  return ed25519Verify(rawPublic, treeHeadInput(head.size, head.head_hash, head.sign_time), head.signature);
}

/** Every audit entry kind of the protocol (§8.1). */
export const ENTRY_KINDS = new Set([
  'signing_key.registered',
  'signing_key.revoked',
  'methodology.accepted',
  'project.accepted',
  'issuance.accepted',
  'transfer.proposed',
  'transfer.completed',
  'transfer.rejected',
  'transfer.cancelled',
  'transfer.expired',
  'request.repeated',
  'units.retired',
  'recognition.requested',
  'recognition.approved',
  'recognition.rejected',
  'recognition.revoked',
  'reconciliation.snapshot',
  'reconciliation.report',
  'duplicate_case.opened',
  'duplicate_case.hold',
  'duplicate_case.decision',
  'duplicate_case.resolved',
  'external_list.imported',
]);

/**
 * Checks a log from sequence 1 (§8.1): numbering, links and recomputed hashes; then that every
 * entry is of a kind the protocol defines (one that is not is reported, never skipped). Returns
 * {size, headHash} reached; throws on the first broken entry.
 */
export function verifyAuditLog(entries) {
  let previous = ZERO_HASH;
  let expected = 1n;
  let unknown = null;
  for (const e of entries) {
    if (BigInt(e.sequence) !== expected) throw new Error(`audit entry ${e.sequence}: expected ${expected}`);
    if (!Buffer.from(e.previous_hash).equals(previous)) throw new Error(`audit entry ${e.sequence}: broken link`);
    const hash = auditEntryHash(e);
    if (!hash.equals(Buffer.from(e.entry_hash))) throw new Error(`audit entry ${e.sequence}: hash mismatch`);
    if (unknown === null && !ENTRY_KINDS.has(e.kind)) unknown = e;
    previous = hash;
    expected += 1n;
  }
  // Faults of the chain come first; then an entry whose effect cannot be told.
  if (unknown !== null) throw new Error(`audit entry ${unknown.sequence}: unknown kind ${JSON.stringify(unknown.kind)}`);
  return { size: expected - 1n, headHash: previous };
}

/** Compares strings by Unicode code point (§9.1), not by UTF-16 code unit. */
function byCodePoint(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

/**
 * The canonical JSON text of a value (§9.1): keys sorted by code point, no whitespace, strings
 * escaped as JSON.stringify does (", \\, \b \f \n \r \t, other controls as lower-case \u00XX),
 * everything else as itself. Numbers are written as JavaScript writes them (integers, and the
 * floats §9.1's example has).
 */
export function canonicalJson(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort(byCodePoint);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}
