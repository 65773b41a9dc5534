// Against a running gateway (started by tests/e2e/test_node_client.py): YRDGW_TARGET host:port,
// YRDGW_PKI_DIR (the dev PKI), YRDGW_PROTO_DIR and YRDGW_SAMPLES_DIR (default: this repository's).
// A fresh database is assumed: Shanghai and Jiangsu publish their samples, everyone's envelopes on
// the feed are verified, Shanghai proposes a transfer to Jiangsu, Jiangsu accepts it, and the
// audit log and its signed tree head are verified with the key GetGatewayInfo serves. Then the
// demo plant filed in Qingpu and in Wujiang opens a duplicate case, which administrators of both
// regions resolve DISTINCT. Last, Jiangsu submits its holdings snapshot as columns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { RegistryClient, adminFiles, holdingsMessages, loadContract, registryFiles } from '../src/client.mjs';
import {
  ZERO_HASH,
  envelopeHash,
  keyIdOf,
  rawPublicKey,
  verifyAuditLog,
  verifyEnvelope,
  verifyTreeHead,
} from '../src/protocol.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TARGET = process.env.YRDGW_TARGET;
const PKI = process.env.YRDGW_PKI_DIR;
const PROTO = process.env.YRDGW_PROTO_DIR || join(here, '..', '..', '..', 'proto');
const SAMPLES = process.env.YRDGW_SAMPLES_DIR || join(here, '..', '..', '..', 'adapters', 'samples');
const SH = '310000';
const JS = '320000';
const skip = TARGET && PKI ? false : 'YRDGW_TARGET and YRDGW_PKI_DIR not set (no gateway to talk to)';

test('a registry publishes, reads, transfers and verifies, from the specification', { skip }, async (t) => {
  const contract = loadContract(PROTO);
  const sh = new RegistryClient(TARGET, SH, registryFiles(PKI, SH), contract);
  const js = new RegistryClient(TARGET, JS, registryFiles(PKI, JS), contract);
  t.after(() => {
    sh.close();
    js.close();
  });

  // §11.7: the facts, and the gateway's key (compared with the copy in the PKI directory, §5).
  const info = await sh.gatewayInfo();
  assert.equal(info.protocol.package, 'yrd.interop.v1');
  assert.match(info.protocol.version, /^1\.\d+\.\d+$/);
  const current = info.signing_keys.filter((k) => k.status === 'GATEWAY_SIGNING_KEY_STATUS_CURRENT');
  assert.equal(current.length, 1);
  const gatewayKey = current[0].public_key;
  assert.equal(current[0].key_id, keyIdOf(gatewayKey));
  assert.equal(current[0].algorithm, 'Ed25519');
  const pinned = rawPublicKey(createPublicKey(readFileSync(join(PKI, 'gateway', 'signing-key.pub.pem'))));
  assert.ok(pinned.equals(gatewayKey), 'GetGatewayInfo serves the key of the PKI directory');
  const regions = Object.fromEntries(info.regions.map((r) => [r.region, r]));
  assert.deepEqual(Object.keys(regions).sort(), ['310000', '320000', '330000', '340000']);
  assert.ok(info.limits.max_native_document_bytes > 0);
  // §6.7, §13: the sign_time window is served; an envelope must be signed within it.
  assert.ok(Number(info.limits.max_sign_time_skew.seconds) > 0);

  // §5, §6.5: each registry continues its key's chain from the head the gateway holds.
  await sh.syncSigner();
  await js.syncSigner();

  // §7.1, §11.1: native samples, methodology, project, issuance, in the region's own format.
  const samples = [
    [sh, SH, 'json'],
    [js, JS, 'xml'],
  ];
  for (const [client, region, ext] of samples) {
    const [contentType] = regions[region].native_content_types;
    for (const kind of ['methodology', 'project', 'issuance']) {
      const document = readFileSync(join(SAMPLES, `${region}-${kind}.${ext}`));
      assert.ok(document.length <= Number(info.limits.max_native_document_bytes));
      const result = await client.publish(contentType, document);
      assert.ok(result.accepted, `${region} ${kind}: ${result.reason} ${result.message}`);
      assert.equal(result.record_names.length, 1);
    }
  }

  // §6.3, §6.4, §6.5, §11.1: every publisher's envelope on the feed verifies with its key,
  // its hash is the record's envelope_hash, and each key's envelopes form its chain.
  const keys = new Map((await sh.signingKeys()).map((k) => [k.key_id, k]));
  const events = await sh.feed();
  assert.equal(events.length, 6);
  const heads = new Map();
  for (const event of events) {
    const env = event.envelope;
    const key = keys.get(env.key_id);
    assert.ok(key, `unknown key ${env.key_id}`);
    assert.ok(verifyEnvelope(env, key.public_key), `signature of ${event.record.envelope_hash}`);
    const hash = envelopeHash(env);
    assert.equal(hash.toString('hex'), event.record.envelope_hash);
    const [sequence, previous] = heads.get(env.key_id) ?? [0n, ZERO_HASH];
    if (!hash.equals(previous)) {
      assert.equal(BigInt(env.sequence), sequence + 1n);
      assert.ok(Buffer.from(env.previous_hash).equals(previous), 'chain link');
      heads.set(env.key_id, [BigInt(env.sequence), hash]);
    }
    assert.equal(key.region, event.record[event.record.kind].region);
  }
  assert.equal(heads.size, 2);

  // §7.2, §11.2: Shanghai proposes 1 t of its first active block to Jiangsu; Jiangsu accepts.
  const [block] = await sh.unitBlocks({ holder_region: SH, origin_region: SH, state: 'UNIT_BLOCK_STATE_ACTIVE' });
  const start = BigInt(block.serials.start);
  assert.ok(BigInt(block.serials.end) - start + 1n >= 1_000_000n);
  const range = { start: String(start), end: String(start + 999_999n) };
  const proposed = await sh.proposeTransfer({
    transfer_id: `node-${Date.now()}`,
    destination_region: JS,
    units: { ranges: { origin_region: SH, ranges: [range] } },
    purpose: 'TRANSFER_PURPOSE_TRANSFER',
  });
  assert.equal(proposed.state, 'TRANSFER_STATE_PROPOSED');
  assert.equal(proposed.quantity_grams, '1000000');
  assert.match(proposed.name, /^regions\/310000\/transfers\/node-\d+$/);
  const accepted = await js.acceptTransfer(proposed.name);
  assert.equal(accepted.state, 'TRANSFER_STATE_COMPLETED');
  const moved = await js.unitBlocks({ holder_region: JS, origin_region: SH });
  assert.deepEqual(
    moved.map((b) => [b.serials.start, b.serials.end, b.state]),
    [[range.start, range.end, 'UNIT_BLOCK_STATE_ACTIVE']],
  );

  // §11.2: Jiangsu retires part of what it received; any region reads it back, listed and by
  // name, page by page, and a name that does not exist is NOT_FOUND (code 5).
  const retirementId = `node-r-${Date.now()}`;
  const retired = await js.retire({
    retirement_id: retirementId,
    units: { ranges: { origin_region: SH, ranges: [{ start: range.start, end: String(start + 999n) }] } },
    purpose: 'TRANSFER_PURPOSE_CHARITABLE',
    beneficiary: '希望工程',
  });
  assert.equal(retired.name, `regions/${JS}/retirements/${retirementId}`);
  assert.equal(retired.quantity_grams, '1000');
  assert.equal(retired.outside_grams, '1000');
  const got = await sh.getRetirement(retired.name);
  assert.deepEqual(got, retired);
  assert.deepEqual(got.blocks.map((b) => [b.serials.start, b.serials.end, b.state]), [
    [range.start, String(start + 999n), 'UNIT_BLOCK_STATE_RETIRED'],
  ]);
  const listed = await sh.listRetirements({ holder_region: JS, purpose: 'TRANSFER_PURPOSE_CHARITABLE' }, 1);
  assert.deepEqual(listed.map((r) => r.name), [retired.name]);
  assert.deepEqual(await sh.listRetirements({ purpose: 'TRANSFER_PURPOSE_ETS_OFFSET' }), []);
  await assert.rejects(
    sh.getRetirement(`regions/${JS}/retirements/never`),
    (err) => err.cause?.code === 5,
  );
  // A purpose that is not a retirement's is refused, not answered empty (INVALID_ARGUMENT, 3).
  await assert.rejects(
    sh.listRetirements({ purpose: 'TRANSFER_PURPOSE_TRANSFER' }),
    (err) => err.cause?.code === 3,
  );

  // §8: the whole audit log verifies, and the signed tree head (by the served key) names it.
  const head = await js.treeHead();
  const entries = (await js.auditEntries()).filter((e) => BigInt(e.sequence) <= BigInt(head.size));
  const reached = verifyAuditLog(entries);
  assert.equal(reached.size, BigInt(head.size));
  assert.ok(reached.headHash.equals(head.head_hash));
  const signer = info.signing_keys.find((k) => k.key_id === head.key_id);
  assert.ok(signer, `tree head signed by key ${head.key_id}, not served by GetGatewayInfo`);
  assert.ok(verifyTreeHead(head, signer.public_key));
  assert.ok(!verifyTreeHead({ ...head, size: String(BigInt(head.size) + 1n) }, signer.public_key));
});

test('an administrator reads the federation status; a registry may not', { skip }, async (t) => {
  const contract = loadContract(PROTO);
  const admin = new RegistryClient(TARGET, SH, adminFiles(PKI, SH, 'admin-a'), contract);
  const sh = new RegistryClient(TARGET, SH, registryFiles(PKI, SH), contract);
  t.after(() => {
    admin.close();
    sh.close();
  });
  // §11.8: every served region, ordered by code; Shanghai read the whole feed in the test above.
  const status = await admin.federationStatus();
  assert.deepEqual(status.regions.map((r) => r.region), ['310000', '320000', '330000', '340000']);
  const [shanghai] = status.regions;
  assert.equal(shanghai.subscriber.cursor, status.feed_head_cursor);
  assert.equal(shanghai.subscriber.lag_records, '0');
  assert.match(shanghai.last_record.name, /^regions\/310000\//);
  assert.ok(shanghai.certificates.every((c) => Number(c.days_left) > 0));
  // §2.4: registries are refused (PERMISSION_DENIED, code 7).
  await assert.rejects(sh.federationStatus(), (err) => err.cause?.code === 7);
});

test('one plant filed in Qingpu and Wujiang: a duplicate case, listed and resolved DISTINCT', { skip }, async (t) => {
  const contract = loadContract(PROTO);
  const sh = new RegistryClient(TARGET, SH, registryFiles(PKI, SH), contract);
  const js = new RegistryClient(TARGET, JS, registryFiles(PKI, JS), contract);
  // §14.2: Shanghai's quorum is two administrators by default, Jiangsu's one.
  const deciders = [
    [SH, 'admin-a'],
    [SH, 'admin-b'],
    [JS, 'admin-a'],
  ].map(([region, name]) => new RegistryClient(TARGET, region, adminFiles(PKI, region, name), contract));
  t.after(() => [sh, js, ...deciders].forEach((c) => c.close()));
  for (const c of [sh, js, ...deciders]) await c.syncSigner();
  const info = await sh.gatewayInfo();
  const contentType = (region) => info.regions.find((r) => r.region === region).native_content_types[0];

  // §7.4: the same plant with the same owner credit code and grid account, Wujiang's site in
  // GCJ-02; the methodologies were published by the first test.
  const qingpu = readFileSync(join(SAMPLES, 'demo-qingpu-310000-project.json'));
  const wujiang = readFileSync(join(SAMPLES, 'demo-wujiang-320000-project.xml'));
  const first = await sh.publish(contentType(SH), qingpu);
  assert.ok(first.accepted, `${first.reason} ${first.message}`);
  const second = await js.publish(contentType(JS), wujiang);
  assert.ok(second.accepted, `${second.reason} ${second.message}`);
  const [shProject] = first.record_names;
  const [jsProject] = second.record_names;

  // §11.9: listed by subject, by region and state; read by name.
  const listed = await sh.listDuplicateCases({ subject: shProject });
  assert.equal(listed.length, 1);
  const [opened] = listed;
  assert.match(opened.name, /^duplicateCases\/dc-[0-9a-f]{12}$/);
  assert.equal(opened.state, 'DUPLICATE_CASE_STATE_OPEN');
  assert.equal(opened.strength, 'MATCH_STRENGTH_CERTAIN');
  assert.deepEqual([opened.first.subject, opened.second.subject], [shProject, jsProject]);
  assert.deepEqual(opened.deciding_regions, [SH, JS]);
  assert.ok(opened.evidence.same_grid_account && opened.evidence.same_owner_credit_code);
  assert.ok(Number(opened.evidence.distance_metres) < 1000, opened.evidence.distance_metres);
  // The record keeps what was filed; the site converted for matching is shown beside it.
  assert.equal(opened.second.identity.site.datum, 'COORDINATE_DATUM_GCJ02');
  assert.equal(opened.second.identity.site.latitude, '31.045964');
  assert.notEqual(opened.second.site_wgs84.latitude, '31.045964');
  assert.deepEqual((await js.listDuplicateCases({ region: JS, state: 'DUPLICATE_CASE_STATE_OPEN' }, 1)).map((c) => c.name), [opened.name]);
  assert.deepEqual(await js.listDuplicateCases({ subject: shProject, state: 'DUPLICATE_CASE_STATE_DISTINCT' }), []);
  assert.deepEqual(await js.getDuplicateCase(opened.name), opened);
  await assert.rejects(js.getDuplicateCase('duplicateCases/dc-000000000000'), (err) => err.cause?.code === 5);

  // §2.4: a registry does not decide (PERMISSION_DENIED, 7).
  const verdict = { duplicate_case: opened.name, resolution: 'CASE_RESOLUTION_DISTINCT', comment: '两座相邻屋顶 / two roofs' };
  await assert.rejects(sh.resolveDuplicateCase(verdict), (err) => err.cause?.code === 7);
  // Each deciding region's quorum on the same resolution resolves it.
  const [a, b, c] = deciders;
  assert.equal((await a.resolveDuplicateCase(verdict)).state, 'DUPLICATE_CASE_STATE_OPEN');
  assert.equal((await c.resolveDuplicateCase(verdict)).state, 'DUPLICATE_CASE_STATE_OPEN');
  const resolved = await b.resolveDuplicateCase(verdict);
  assert.equal(resolved.state, 'DUPLICATE_CASE_STATE_DISTINCT');
  assert.equal(resolved.resolution, 'CASE_RESOLUTION_DISTINCT');
  assert.equal(resolved.standing, '');
  assert.ok(resolved.resolve_time);
  // §6.3: every decision carries its envelope, signed by the deciding administrator's key.
  const keys = new Map((await sh.signingKeys()).map((k) => [k.key_id, k]));
  assert.deepEqual(resolved.decisions.map((d) => [d.region, d.admin]), [[SH, 'admin-a'], [JS, 'admin-a'], [SH, 'admin-b']]);
  for (const d of resolved.decisions) {
    assert.equal(d.envelope.content_type, 'application/vnd.yrd.case-verdict+proto');
    const key = keys.get(d.envelope.key_id);
    assert.equal(key.owner, `admin/${d.admin}`);
    assert.ok(verifyEnvelope(d.envelope, key.public_key));
    assert.equal(contract.decode('CaseVerdict', d.envelope.payload).duplicate_case, opened.name);
  }
  // A decision on a resolved case is refused (FAILED_PRECONDITION, 9).
  await assert.rejects(c.resolveDuplicateCase(verdict), (err) => err.cause?.code === 9);

  // §8: the log with the new entry kinds still verifies end to end.
  const head = await sh.treeHead();
  const entries = (await sh.auditEntries()).filter((e) => BigInt(e.sequence) <= BigInt(head.size));
  assert.ok(entries.some((e) => e.kind === 'duplicate_case.resolved'));
  assert.equal(verifyAuditLog(entries).size, BigInt(head.size));
});

test('a registry submits its holdings as columns; columns of different lengths are refused', { skip }, async (t) => {
  const contract = loadContract(PROTO);
  const js = new RegistryClient(TARGET, JS, registryFiles(PKI, JS), contract);
  t.after(() => js.close());
  // §11.4: what the ledger says Jiangsu holds (its samples, Shanghai's units it received and
  // retired part of), as ListUnitBlocks answers it, two blocks a message.
  const held = await js.unitBlocks({ holder_region: JS });
  assert.ok(new Set(held.map((b) => b.origin_region)).size >= 2, 'blocks of two origins');
  const grams = (blocks) => blocks.reduce((sum, b) => sum + BigInt(b.serials.end) - BigInt(b.serials.start) + 1n, 0n);
  const ack = await js.submitHoldings(new Date(), held, [], { batch: 2 });
  assert.match(ack.snapshot, /^regions\/320000\/snapshots\/\d+$/);
  assert.equal(ack.block_count, String(held.length));
  assert.equal(ack.quantity_grams, grams(held).toString());
  // int64 serials beyond 2^53, as BigInts: the gateway counts every gram.
  const large = [['330000', 2n ** 53n + 1n, 2n ** 62n, 'UNIT_BLOCK_STATE_ACTIVE'], ['330000', '4611686018427387905', 2n ** 62n + 2n, 2]];
  const big = await js.submitHoldings(new Date(), large);
  assert.equal(big.block_count, '2');
  assert.equal(big.quantity_grams, (2n ** 62n - 2n ** 53n + 2n).toString());
  // A batch whose columns differ in length, written on the stream as is: INVALID_ARGUMENT (3),
  // the first block at fault named (block 0: the first of the snapshot).
  const [header] = holdingsMessages(contract, new Date(), []);
  const bad = { columns: { origin_region: JS, serial_starts: ['0', '10'], serial_ends: ['9', '19'], states: ['UNIT_BLOCK_STATE_ACTIVE'] } };
  await assert.rejects(
    js.clientStream(js.reconciliation, 'SubmitHoldings', [header, bad]),
    (err) => err.cause?.code === 3 && /^block 0: a batch's columns differ in length/.test(err.cause.details),
  );
});
