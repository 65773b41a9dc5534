// The worked examples of docs/protocol.md (§5, §6.8, §8.1, §8.2), reproduced byte for byte.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { holdingsMessages, int64String, loadContract } from '../src/client.mjs';
import {
  ENTRY_KINDS,
  EnvelopeSigner,
  auditEntryHash,
  canonicalJson,
  envelopeHash,
  keyIdOf,
  privateKeyFromSeed,
  rawPublicKey,
  signingInput,
  treeHeadInput,
  verifyEnvelope,
  verifyAuditLog,
  verifyTreeHead,
} from '../src/protocol.mjs';
import {
  CREDIT_CODE_ALPHABET,
  CREDIT_CODE_CATEGORIES,
  IdentityKeyError,
  checkCreditCode,
  checkGridAccount,
  checkLatitude,
  checkLongitude,
  checkSite,
  creditCodeCheckChar,
} from '../src/identity.mjs';
import { readFileSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const PROTO = process.env.YRDGW_PROTO_DIR || join(here, '..', '..', '..', 'proto');
const hex = (s) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const key1 = privateKeyFromSeed(Buffer.alloc(32, 1));
const key2 = privateKeyFromSeed(Buffer.alloc(32, 2));

test('K1, K2: public keys and key ids', () => {
  assert.equal(rawPublicKey(key1).toString('hex'), '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c');
  assert.equal(keyIdOf(rawPublicKey(key1)), '34750f98bd59fcfc946da45aaabe933b');
  assert.equal(rawPublicKey(key2).toString('hex'), '8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394');
  assert.equal(keyIdOf(rawPublicKey(key2)), '6a3803d5f059902a1c6dafbc9ba47292');
});

test('E1, E2: signing input, signature, envelope hash and the chain', () => {
  const contract = loadContract(PROTO);
  const proposal = contract.encode('TransferProposal', {
    transfer_id: 't-0001',
    destination_region: '320000',
    units: { ranges: { origin_region: '310000', ranges: [{ start: 1000001000, end: 1001000999 }] } },
    purpose: 'TRANSFER_PURPOSE_TRANSFER',
  });
  assert.equal(proposal.toString('hex'), '0a06742d3030303112063332303030301a180a160a06333130303030120c08e89bebdc0310a7a0a8dd032001');
  const signer = new EnvelopeSigner(key1);
  const e1 = signer.sign('application/vnd.yrd.transfer-proposal+proto', proposal, new Date('2025-01-01T00:00:00Z'));
  assert.equal(signingInput(e1).length, 210);
  assert.equal(
    e1.signature.toString('hex'),
    '860799cbe6224b7c47298433c960733e4bd357d4636323ba28d3729d32bf8edab7360d06c84ff89609966931e6cc5c8df02da199cc4616bdd9182a7e90f40c07',
  );
  assert.equal(envelopeHash(e1).toString('hex'), '7bd8249ee445edbbe47cdea2cf1506659a6ec6076afd352163fbb72bce237f3a');
  assert.ok(verifyEnvelope(e1, rawPublicKey(key1)));
  assert.ok(!verifyEnvelope(e1, rawPublicKey(key2)));

  const answer = contract.encode('TransferAnswer', {
    transfer: 'regions/310000/transfers/t-0001',
    reason: 'wrong destination',
    decision: 'TRANSFER_DECISION_CANCEL',
  });
  assert.equal(
    answer.toString('hex'),
    '0a1f726567696f6e732f3331303030302f7472616e73666572732f742d30303031121177726f6e672064657374696e6174696f6e1803',
  );
  const e2 = signer.sign('application/vnd.yrd.transfer-answer+proto', answer, new Date('2025-01-01T00:01:00.500Z'));
  assert.equal(e2.sequence, '2');
  assert.equal(e2.previous_hash.toString('hex'), '7bd8249ee445edbbe47cdea2cf1506659a6ec6076afd352163fbb72bce237f3a');
  assert.deepEqual(e2.sign_time, { seconds: '1735689660', nanos: 500000000 });
  assert.equal(envelopeHash(e2).toString('hex'), 'd582e01bf91f5e17389954430d72ed947ffb24526bc5580cdf22dd97c82456d9');

  const tampered = { ...e2, payload: Buffer.concat([e2.payload, Buffer.from([0])]) };
  assert.ok(!verifyEnvelope(tampered, rawPublicKey(key1)));
});

test('A1, T1: audit entry hash and signed tree head', () => {
  const detail = Buffer.from(
    '{"key_id":"34750f98bd59fcfc946da45aaabe933b","owner":"registry","public_key":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c","revoke_reason":null}',
  );
  assert.equal(detail.length, 165);
  const entry = {
    sequence: '1',
    kind: 'signing_key.registered',
    subject: 'regions/310000/keys/34750f98bd59fcfc946da45aaabe933b',
    actor_region: '',
    actor: 'gateway',
    detail,
    previous_hash: Buffer.alloc(32),
    create_time: { seconds: '1735689600', nanos: 123456000 },
  };
  const a1 = auditEntryHash(entry);
  assert.equal(a1.toString('hex'), 'a6a22e59ddf8fde0630261d2de60ebc7a296d5f007726516b187fad3b2dc8302');

  const signTime = { seconds: '1735689601', nanos: 0 };
  assert.equal(
    treeHeadInput('1', a1, signTime).toString('hex'),
    '000000187972642d696e7465726f702f76312f747265652d6865616400000008000000000000000100000020' +
      'a6a22e59ddf8fde0630261d2de60ebc7a296d5f007726516b187fad3b2dc83020000000800062a99ba1ba240',
  );
  const head = {
    size: '1',
    head_hash: a1,
    sign_time: signTime,
    key_id: '6a3803d5f059902a1c6dafbc9ba47292',
    signature: hex(`d8287ee8c10b2cbfaa8f4aa9580da8a0a8509b95c6c1695521a7d30a0c36b461
                    41709a661ac4be6303a4b97a45e6d232bb9ccc3a644f5a5aee7e9222c50f9100`),
  };
  assert.ok(verifyTreeHead(head, rawPublicKey(key2)));
  assert.ok(!verifyTreeHead({ ...head, size: '2' }, rawPublicKey(key2)));
  assert.ok(!verifyTreeHead(head, rawPublicKey(key1))); // key id of another key
});

test('C1, C2, C3: rule-2 audit entries and the stored values they commit to (§8.3)', async () => {
  const { createHash } = await import('node:crypto');
  const sha256 = (b) => createHash('sha256').update(b).digest('hex');
  const doc = JSON.parse(readFileSync(join(here, '..', '..', '..', 'docs', 'vectors', 'audit-commitments.json'), 'utf8'));
  let previous = Buffer.alloc(32);
  for (const c of doc.cases) {
    const e = c.entry;
    const micros = BigInt(e.create_time_micros);
    const entry = {
      sequence: String(e.sequence),
      kind: e.kind,
      subject: e.subject,
      actor_region: e.actor_region,
      actor: e.actor,
      detail: Buffer.from(e.detail_text),
      previous_hash: previous,
      create_time: { seconds: String(micros / 1000000n), nanos: Number(micros % 1000000n) * 1000 },
    };
    previous = auditEntryHash(entry);
    assert.equal(previous.toString('hex'), e.entry_hash);
    const detail = JSON.parse(e.detail_text);
    assert.equal(detail.v, 2);
    if (c.id === 'C1') {
      assert.equal(sha256(Buffer.from(c.stored.value_text)), detail.body_sha256);
      assert.notEqual(sha256(Buffer.from(c.tampered.value_text)), detail.body_sha256);
    } else if (c.id === 'C3') {
      // An external project row: canonical JSON (§9.1: keys sorted, no blanks) of its columns.
      const rowDigest = (row) => {
        const input = canonicalJson(row);
        return [input, sha256(Buffer.from(input))];
      };
      assert.deepEqual(rowDigest(c.stored.row), [c.stored.digest_input, c.stored.sha256]);
      assert.deepEqual(detail.projects, [[c.stored.row.subject, c.stored.sha256]]);
      assert.equal(detail.rows, detail.projects.length);
      assert.equal(rowDigest(c.tampered.row)[1], c.tampered.sha256);
      assert.notEqual(c.tampered.sha256, c.stored.sha256);
    } else {
      // Rows sorted field by field (strings by code point, numbers by value), one JSON array a line.
      const cmp = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
      const key = (v) => (typeof v === 'number' ? BigInt(v) : v);
      const digest = (rows) => {
        const sorted = [...rows].sort((a, b) => {
          for (let i = 0; i < a.length; i++) {
            const c = cmp(key(a[i]), key(b[i]));
            if (c) return c;
          }
          return 0;
        });
        const input = sorted.map((r) => JSON.stringify(r) + '\n').join('');
        return [input, sha256(Buffer.from(input))];
      };
      for (const [side, kept] of Object.entries(c.stored.snapshot_blocks)) {
        assert.deepEqual(digest(kept.rows), [kept.digest_input, kept.sha256]);
        assert.equal(kept.sha256, detail.stored_blocks_sha256[side]);
        assert.equal(kept.rows.length, detail.stored_blocks[side]);
      }
      const totals = c.stored.snapshot_totals;
      assert.deepEqual(digest(totals.rows), [totals.digest_input, totals.sha256]);
      assert.equal(totals.sha256, detail.totals_sha256);
      const [blocks, sums] = c.tampered;
      assert.equal(digest(blocks.rows)[1], blocks.sha256);
      assert.notEqual(blocks.sha256, detail.stored_blocks_sha256[blocks.side]);
      assert.equal(digest(sums.rows)[1], sums.sha256);
      assert.notEqual(sums.sha256, detail.totals_sha256);
    }
  }
  assert.equal(previous.toString('hex'), doc.head.head_hash);
});

const vectors = (name) => JSON.parse(readFileSync(join(here, '..', '..', '..', 'docs', 'vectors', `${name}.json`), 'utf8'));

test('J1–J5: canonical JSON (§9.1)', () => {
  for (const c of vectors('canonical-json').cases) {
    const text = canonicalJson(JSON.parse(c.input_json));
    assert.equal(text, c.expected.text, c.id);
    assert.equal(Buffer.from(text).toString('hex'), c.expected.utf8, c.id);
  }
});

test('V1, V2: signed CaseVerdict envelopes of an administrator (§7.2, §11.9)', () => {
  const contract = loadContract(PROTO);
  const doc = vectors('case-verdict');
  const admin = privateKeyFromSeed(hex(doc.keys.admin.seed));
  assert.equal(keyIdOf(rawPublicKey(admin)), doc.keys.admin.key_id);
  const signer = new EnvelopeSigner(admin);
  for (const c of doc.cases) {
    const body = contract.encode('CaseVerdict', c.input.payload_json);
    assert.equal(body.toString('hex'), c.input.payload, c.id);
    assert.deepEqual(contract.decode('CaseVerdict', body).duplicate_case, c.input.payload_json.duplicate_case);
    const { seconds, nanos } = c.input.sign_time;
    const when = new Date(seconds * 1000 + nanos / 1e6);
    const env = signer.sign(c.input.content_type, body, when);
    assert.equal(env.content_type, 'application/vnd.yrd.case-verdict+proto');
    assert.equal(env.sequence, String(c.input.sequence), c.id);
    assert.equal(env.previous_hash.toString('hex'), c.input.previous_hash, c.id);
    assert.equal(env.sign_time.nanos, nanos, c.id);
    assert.equal(signingInput(env).toString('hex'), c.expected.signing_input, c.id);
    assert.equal(env.signature.toString('hex'), c.expected.signature, c.id);
    assert.equal(envelopeHash(env).toString('hex'), c.expected.envelope_hash, c.id);
    assert.ok(verifyEnvelope(env, rawPublicKey(admin)));
  }
});

test('I, L, G, S, A: identity keys valid or invalid at the key the vectors name (§7.4)', () => {
  const doc = vectors('identity-keys');
  assert.equal(doc.credit_code_alphabet, CREDIT_CODE_ALPHABET);
  assert.deepEqual(doc.credit_code_categories, CREDIT_CODE_CATEGORIES);
  const agrees = (c, check) => {
    let fault = null;
    let result;
    try {
      result = check();
    } catch (err) {
      assert.ok(err instanceof IdentityKeyError, `${c.id}: ${err}`);
      fault = err.key;
    }
    assert.equal(fault === null, c.expected.valid, `${c.id} ${c.description}`);
    if (fault !== null) assert.equal(fault, c.expected.key, c.id);
    return result;
  };
  for (const c of doc.owner_credit_codes) {
    agrees(c, () => checkCreditCode(c.input.value));
    if (c.expected.valid) assert.equal(creditCodeCheckChar(c.input.value.slice(0, 17)), c.expected.check_character);
  }
  for (const c of doc.latitudes) agrees(c, () => checkLatitude(c.input.value));
  for (const c of doc.longitudes) agrees(c, () => checkLongitude(c.input.value));
  for (const c of doc.sites) {
    const datum = agrees(c, () => checkSite(c.input.latitude, c.input.longitude, c.input.datum));
    if (c.expected.valid) assert.equal(datum, c.expected.datum, c.id);
  }
  for (const c of doc.grid_accounts) agrees(c, () => checkGridAccount(c.input.value));
});

test('an audit entry of a kind the protocol does not define is reported (§8.1)', () => {
  const base = {
    sequence: '1',
    kind: 'signing_key.registered',
    subject: 's',
    actor_region: '',
    actor: 'gateway',
    detail: Buffer.from('{}'),
    previous_hash: Buffer.alloc(32),
    create_time: { seconds: '1735689600', nanos: 0 },
  };
  const first = { ...base, entry_hash: auditEntryHash(base) };
  assert.equal(verifyAuditLog([first]).size, 1n);
  const unknownFields = { ...base, sequence: '2', kind: 'units.teleported', previous_hash: first.entry_hash };
  const unknown = { ...unknownFields, entry_hash: auditEntryHash(unknownFields) };
  assert.throws(() => verifyAuditLog([first, unknown]), /audit entry 2: unknown kind "units.teleported"/);
  assert.ok(ENTRY_KINDS.has('duplicate_case.resolved') && ENTRY_KINDS.has('external_list.imported'));
});

test('H1–H5, HX1–HX9: SubmitHoldings streams, HeldBlockColumns and HeldBlockBatch (§11.4)', () => {
  const contract = loadContract(PROTO);
  const doc = vectors('held-block-columns');
  const states = contract.enumValues('UnitBlockState');
  const stateName = (v) => Object.keys(states).find((k) => states[k] === v) ?? v;
  // The blocks of one stream message, [origin, start, end, state name], int64 as strings.
  const blocksOf = (m) => {
    if (m.columns) {
      const c = m.columns;
      assert.equal(c.serial_ends.length, c.serial_starts.length);
      assert.equal(c.states.length, c.serial_starts.length);
      return c.serial_starts.map((s, i) => [c.origin_region, s, c.serial_ends[i], stateName(c.states[i])]);
    }
    return m.blocks.blocks.map((b) => [b.origin_region, b.serials.start, b.serials.end, b.state]);
  };
  const partOf = (m) => ['header', 'blocks', 'columns'].find((p) => m[p]) ?? '';
  for (const c of doc.cases) {
    const messages = c.input.stream.map((h) => contract.decode('SubmitHoldingsRequest', hex(h)));
    assert.deepEqual(messages.map(partOf), c.input.parts, c.id);
    const [header, ...batches] = messages;
    const when = new Date(Number(header.header.snapshot_time.seconds) * 1000);
    assert.equal(when.toISOString().replace('.000Z', 'Z'), doc.snapshot_time);
    const blocks = batches.flatMap(blocksOf);
    assert.deepEqual(blocks, c.expected.blocks, c.id);
    assert.equal(String(blocks.length), c.expected.block_count, c.id);
    const grams = blocks.reduce((sum, [, s, e]) => sum + BigInt(e) - BigInt(s) + 1n, 0n);
    assert.equal(grams.toString(), c.expected.quantity_grams, c.id);
    if (c.expected.canonical) {
      // What this client sends for the blocks as given: byte for byte the vector's stream.
      const { blocks: given, batch } = c.expected.canonical;
      const sent = [...holdingsMessages(contract, when, given, [], { batch })];
      const bytes = sent.map((m) => contract.encode('SubmitHoldingsRequest', m).toString('hex'));
      assert.deepEqual(bytes, c.input.stream, c.id);
      // Serials given as BigInts (and small ones as numbers) make the same bytes.
      const typed = given.map(([o, s, e, st]) => [o, BigInt(s), BigInt(e) <= 2n ** 53n ? Number(e) : BigInt(e), states[st]]);
      const again = [...holdingsMessages(contract, when, typed, [], { batch })];
      assert.deepEqual(again.map((m) => contract.encode('SubmitHoldingsRequest', m).toString('hex')), bytes, c.id);
    }
  }
  const [h1, h2] = doc.cases;
  assert.deepEqual(h1.expected.blocks, h2.expected.blocks);
  assert.notDeepEqual(h1.input.stream, h2.input.stream);
  for (const c of doc.refused) {
    assert.equal(c.expected.reason, 'SNAPSHOT_INVALID', c.id);
    assert.equal(c.expected.code, 'INVALID_ARGUMENT', c.id);
    const messages = c.input.stream.map((h) => contract.decode('SubmitHoldingsRequest', hex(h)));
    assert.deepEqual(messages.map(partOf), c.input.parts, c.id);
  }
});

test('int64 serials: BigInt, decimal strings and safe integers, never a rounded double', () => {
  assert.equal(int64String(2n ** 63n - 1n), '9223372036854775807');
  assert.equal(int64String('9007199254740993'), '9007199254740993');
  assert.equal(int64String(9007199254740991), '9007199254740991');
  assert.equal(int64String('-5'), '-5');
  assert.throws(() => int64String(9007199254740993), TypeError); // already 9007199254740992
  assert.throws(() => int64String(1.5), TypeError);
  assert.throws(() => int64String('1e3'), TypeError);
  assert.throws(() => int64String(' 12'), TypeError);
  assert.throws(() => int64String('9223372036854775808'), RangeError); // protobufjs would wrap it
  const contract = loadContract(PROTO);
  const when = new Date('2025-01-01T00:00:00Z');
  assert.throws(() => [...holdingsMessages(contract, when, [['310000', 0, 9, 'UNIT_BLOCK_STATE_ACTVE']])], TypeError);
  assert.throws(() => [...holdingsMessages(contract, when, [], [], { batch: 0 })], RangeError);
  // A UnitBlock as ListUnitBlocks answers it is taken as well as [origin, start, end, state].
  const unit = { origin_region: '310000', serials: { start: '5', end: '9' }, state: 'UNIT_BLOCK_STATE_HELD' };
  const [header, fromUnit] = holdingsMessages(contract, new Date(Date.UTC(2025, 0, 1, 0, 0, 0, 250)), [unit]);
  assert.deepEqual(header.header.snapshot_time, { seconds: '1735689600', nanos: 250_000_000 });
  const held = contract.enumValues('UnitBlockState').UNIT_BLOCK_STATE_HELD;
  assert.deepEqual(fromUnit.columns, { origin_region: '310000', serial_starts: ['5'], serial_ends: ['9'], states: [held] });
});
