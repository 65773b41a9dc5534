// A registry's connection to the gateway (docs/protocol.md §2): mTLS with the registry's
// certificate, the .proto files loaded at runtime, typed unary calls, the feed stream, and signed
// requests whose chain head follows the gateway's (§6.5).

import { readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { EnvelopeSigner } from './protocol.mjs';

const PACKAGE = 'yrd.interop.v1';

/** Content types of the signed request bodies (§7.2). */
export const CONTENT_TYPES = {
  proposal: 'application/vnd.yrd.transfer-proposal+proto',
  answer: 'application/vnd.yrd.transfer-answer+proto',
  retirement: 'application/vnd.yrd.retirement-order+proto',
  caseVerdict: 'application/vnd.yrd.case-verdict+proto',
};

/** Every .proto file of the contract, relative to protoRoot. */
function protoFiles(protoRoot) {
  const dir = join(protoRoot, 'yrd', 'interop', 'v1');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => `yrd/interop/v1/${f}`);
}

/**
 * The contract loaded from the .proto files: gRPC service constructors (proto-loader) and
 * protobufjs message types to serialise signed bodies.
 */
export function loadContract(protoRoot) {
  const files = protoFiles(protoRoot);
  const definition = protoLoader.loadSync(files, {
    includeDirs: [protoRoot],
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const services = grpc.loadPackageDefinition(definition).yrd.interop.v1;
  const root = new protobuf.Root();
  // Imports name files relative to protoRoot; google/protobuf/* are protobufjs's built-in copies.
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') || isAbsolute(target) ? target : join(protoRoot, target);
  root.loadSync(files, { keepCase: true });
  return {
    services,
    /** Serialises a body message (e.g. 'TransferProposal') from a plain object. */
    encode(typeName, value) {
      const type = root.lookupType(`${PACKAGE}.${typeName}`);
      return Buffer.from(type.encode(type.fromObject(value)).finish());
    },
    /** The values of an enum (e.g. 'UnitBlockState') by name. */
    enumValues(typeName) {
      return root.lookupEnum(`${PACKAGE}.${typeName}`).values;
    },
    /** Decodes bytes as a message, to a plain object with snake_case names. */
    decode(typeName, bytes) {
      const type = root.lookupType(`${PACKAGE}.${typeName}`);
      return type.toObject(type.decode(bytes), { longs: String, enums: String, bytes: Buffer, defaults: true });
    },
  };
}

/** Paths of one registry's files in a PKI directory laid out as the reference tooling does. */
export function registryFiles(pkiDir, region) {
  const dir = join(pkiDir, 'regions', region, 'registry');
  return {
    ca: join(pkiDir, 'ca.pem'),
    cert: join(dir, 'cert.pem'),
    key: join(dir, 'key.pem'),
    signingKey: join(dir, 'signing-key.pem'),
  };
}

/** Paths of one administrator's files (§2.2: spiffe://yrd-interop/region/{region}/admin/{name}). */
export function adminFiles(pkiDir, region, name) {
  const dir = join(pkiDir, 'regions', region, 'admin', name);
  return {
    ca: join(pkiDir, 'ca.pem'),
    cert: join(dir, 'cert.pem'),
    key: join(dir, 'key.pem'),
    signingKey: join(dir, 'signing-key.pem'),
  };
}

/** Undefined when the peer certificate names the gateway (§2.1, §2.2), else the error. */
export function checkGatewayIdentity(_host, cert) {
  const uris = (cert.subjectaltname || '')
    .split(', ')
    .filter((san) => san.startsWith('URI:spiffe://yrd-interop/'));
  if (uris.length === 1 && uris[0] === 'URI:spiffe://yrd-interop/gateway') return undefined;
  return new Error(`the server is not the gateway: ${cert.subjectaltname}`);
}

/** Blocks per SubmitHoldings message (§11.4: at most 10 000, ~140 KB as columns). */
export const DEFAULT_BATCH = 10_000;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * An int64 as a decimal string (how proto-loader and protobufjs take it without loss), from a
 * BigInt, a decimal string or a safe integer; anything else, or out of range, throws (a double
 * beyond 2^53 has already lost digits, and protobufjs would wrap a string beyond 2^63-1).
 */
export function int64String(value) {
  let n;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && /^-?[0-9]+$/.test(value)) n = BigInt(value);
  else throw new TypeError(`not an int64 (a BigInt, a decimal string or a safe integer): ${value}`);
  if (n < INT64_MIN || n > INT64_MAX) throw new RangeError(`${value} is outside int64`);
  return n.toString();
}

/** A google.protobuf.Timestamp from a Date (defaults omitted, as proto3 encoders do). */
function timestamp(date) {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new TypeError('the snapshot time is not a valid Date');
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  return nanos ? { seconds: String(seconds), nanos } : { seconds: String(seconds) };
}

/**
 * The SubmitHoldings stream of a snapshot (§11.4) as request objects: the header, then the
 * blocks as HeldBlockColumns, each origin's blocks in the order given, a message whenever
 * `batch` of one origin are pending, the rest at the end in the order their origin was first
 * pending. A block is [origin, start, end, state] or a UnitBlock ({origin_region, serials:
 * {start, end}, state}); serials are int64 (int64String), the state a UnitBlockState name or
 * number (an unknown name throws: protobufjs would send it as 0).
 */
export function* holdingsMessages(contract, snapshotTime, blocks, completedTransfers = [], { batch = DEFAULT_BATCH } = {}) {
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer: ${batch}`);
  const stateValues = contract.enumValues('UnitBlockState');
  const stateOf = (state) => {
    if (typeof state === 'number' && Number.isInteger(state)) return state;
    if (typeof state === 'string' && Object.hasOwn(stateValues, state)) return stateValues[state];
    throw new TypeError(`not a UnitBlockState: ${state}`);
  };
  yield { header: { snapshot_time: timestamp(snapshotTime), completed_transfer_ids: [...completedTransfers] } };
  const pending = new Map();
  const message = (origin, columns) => ({ columns: { origin_region: origin, ...columns } });
  for (const block of blocks) {
    const [origin, start, end, state] = Array.isArray(block)
      ? block
      : [block.origin_region, block.serials.start, block.serials.end, block.state];
    let columns = pending.get(origin);
    if (!columns) {
      columns = { serial_starts: [], serial_ends: [], states: [] };
      pending.set(origin, columns);
    }
    columns.serial_starts.push(int64String(start));
    columns.serial_ends.push(int64String(end));
    columns.states.push(stateOf(state));
    if (columns.states.length >= batch) {
      pending.delete(origin);
      yield message(origin, columns);
    }
  }
  for (const [origin, columns] of pending) yield message(origin, columns);
}

/** A gRPC error carrying the gateway's ErrorInfo reason when there is one (§10). */
function describe(err) {
  const reason = err.metadata?.get('grpc-status-details-bin')?.length ? ' (see ErrorInfo)' : '';
  return new Error(`${err.code} ${err.details}${reason}`, { cause: err });
}

export class RegistryClient {
  /**
   * target: "host:port"; files: {ca, cert, key, signingKey} (PEM); contract: loadContract().
   */
  constructor(target, region, files, contract) {
    this.region = region;
    this.contract = contract;
    // §2.1: the gateway's certificate chains to the federation root (checked by TLS) and
    // carries the SAN URI spiffe://yrd-interop/gateway (checked here, in place of a host name).
    const credentials = grpc.credentials.createSsl(
      readFileSync(files.ca),
      readFileSync(files.key),
      readFileSync(files.cert),
      { checkServerIdentity: checkGatewayIdentity },
    );
    const s = contract.services;
    const opts = { 'grpc.max_receive_message_length': 4 * 1024 * 1024 };
    this.registry = new s.RegistryService(target, credentials, opts);
    this.channel = this.registry.getChannel();
    const shared = { channelOverride: this.channel };
    this.transfers = new s.TransferService(target, credentials, shared);
    this.keys = new s.KeyService(target, credentials, shared);
    this.audit = new s.AuditService(target, credentials, shared);
    this.info = new s.GatewayInfoService(target, credentials, shared);
    this.status = new s.StatusService(target, credentials, shared);
    this.duplicates = new s.DuplicateService(target, credentials, shared);
    this.reconciliation = new s.ReconciliationService(target, credentials, shared);
    this.signer = new EnvelopeSigner(createPrivateKey(readFileSync(files.signingKey)));
  }

  close() {
    this.registry.close();
  }

  /** A unary call as a promise. */
  call(stub, method, request) {
    return new Promise((resolve, reject) => {
      stub[method](request, { deadline: Date.now() + 15_000 }, (err, reply) =>
        err ? reject(describe(err)) : resolve(reply),
      );
    });
  }

  /**
   * A client-streaming call as a promise: writes each of `messages` (any iterable, consumed as
   * the stream drains), ends the stream and resolves with the reply. A message that cannot be
   * made (the iterable throws) cancels the call and rejects with that error.
   */
  clientStream(stub, method, messages, timeoutMs = 15_000) {
    return new Promise((resolve, reject) => {
      let settled = false;
      const call = stub[method]({ deadline: Date.now() + timeoutMs }, (err, reply) => {
        if (settled) return;
        settled = true;
        if (err) reject(describe(err));
        else resolve(reply);
      });
      const iterator = messages[Symbol.iterator]();
      const pump = () => {
        try {
          // Stop writing once the gateway has answered (a refusal may come mid-stream).
          while (!settled) {
            const next = iterator.next();
            if (next.done) {
              call.end();
              return;
            }
            if (!call.write(next.value)) {
              call.once('drain', pump);
              return;
            }
          }
        } catch (err) {
          settled = true;
          call.cancel();
          reject(err);
        }
      };
      pump();
    });
  }

  /**
   * §11.4: streams this registry's holdings snapshot (the header, then HeldBlockColumns per
   * origin, `batch` blocks a message: see holdingsMessages) and resolves with the
   * SubmitHoldingsResponse ({snapshot, block_count, quantity_grams}, int64 as strings).
   * `snapshotTime` is a Date; `completedTransfers` transfer resource names.
   */
  submitHoldings(snapshotTime, blocks, completedTransfers = [], { batch = DEFAULT_BATCH } = {}) {
    const messages = holdingsMessages(this.contract, snapshotTime, blocks, completedTransfers, { batch });
    // A large registry's snapshot takes long: allow it ten minutes, as the Python SDK does.
    return this.clientStream(this.reconciliation, 'SubmitHoldings', messages, 600_000);
  }

  gatewayInfo() {
    return this.call(this.info, 'GetGatewayInfo', {});
  }

  /** §11.8: per region, feed lag, pending transfers, reconciliation, keys, certificate expiry
   * (administrators and the gateway only: a registry gets PERMISSION_DENIED). */
  federationStatus() {
    return this.call(this.status, 'GetFederationStatus', {});
  }

  /** Every key of the directory, revoked ones too (to verify history). */
  async signingKeys(region = '') {
    return (await this.call(this.keys, 'ListSigningKeys', { region, include_revoked: true })).keys;
  }

  /** Sets the signer's chain head to what the gateway last accepted from this key (§5). */
  async syncSigner() {
    const mine = (await this.signingKeys(this.region)).find((k) => k.key_id === this.signer.keyId);
    if (!mine) throw new Error(`key ${this.signer.keyId} is not registered at the gateway`);
    this.signer.rewind(mine.last_sequence, mine.last_envelope_hash);
  }

  /** Signs a native document and publishes it; the chain head is rewound when refused. */
  async publish(contentType, document) {
    const head = this.signer.head();
    const envelope = this.signer.sign(contentType, document);
    const { result } = await this.call(this.registry, 'PublishEnvelope', { envelope });
    if (!result.accepted) this.signer.rewind(...head);
    return result;
  }

  /** The whole feed from the beginning (no follow), as FeedEvents. */
  feed(request = {}) {
    return new Promise((resolve, reject) => {
      const events = [];
      const stream = this.registry.Subscribe({ cursor: '', ...request, follow: false });
      stream.on('data', (msg) => events.push(...msg.events));
      stream.on('error', (err) => reject(describe(err)));
      stream.on('end', () => resolve(events));
    });
  }

  /** Signs a body and sends it on an RPC (of TransferService unless `stub` says otherwise);
   * rewinds the chain head when refused. */
  async signed(method, contentType, typeName, body, stub = this.transfers) {
    const head = this.signer.head();
    const envelope = this.signer.sign(contentType, this.contract.encode(typeName, body));
    try {
      return await this.call(stub, method, { envelope });
    } catch (err) {
      this.signer.rewind(...head);
      throw err;
    }
  }

  async proposeTransfer(proposal) {
    return (await this.signed('ProposeTransfer', CONTENT_TYPES.proposal, 'TransferProposal', proposal)).transfer;
  }

  async acceptTransfer(name) {
    const answer = { transfer: name, decision: 'TRANSFER_DECISION_ACCEPT', reason: '' };
    return (await this.signed('AcceptTransfer', CONTENT_TYPES.answer, 'TransferAnswer', answer)).transfer;
  }

  /** Retires held units (§11.2 Retire); `order` is a RetirementOrder. */
  async retire(order) {
    return (await this.signed('Retire', CONTENT_TYPES.retirement, 'RetirementOrder', order)).retirement;
  }

  /** One retirement by resource name (any region's; NOT_FOUND / RETIREMENT_NOT_FOUND). */
  async getRetirement(name) {
    return (await this.call(this.transfers, 'GetRetirement', { name })).retirement;
  }

  /** Every retirement matching the filter ({holder_region, purpose, compliance_year}: empty, 0
   * or UNSPECIFIED for any), in the order they took effect, following page tokens. */
  async listRetirements(filter = {}, pageSize = 0) {
    const retirements = [];
    let page_token = '';
    do {
      const reply = await this.call(this.transfers, 'ListRetirements', {
        ...filter,
        page_size: pageSize,
        page_token,
      });
      retirements.push(...reply.retirements);
      page_token = reply.next_page_token;
    } while (page_token);
    return retirements;
  }

  /** §11.9: one duplicate case by name (NOT_FOUND / DUPLICATE_CASE_NOT_FOUND). */
  async getDuplicateCase(name) {
    return (await this.call(this.duplicates, 'GetDuplicateCase', { name })).duplicate_case;
  }

  /** §11.9: every case matching the filter ({region, state, strength, subject}: empty or
   * UNSPECIFIED for any), newest first, following page tokens. */
  async listDuplicateCases(filter = {}, pageSize = 0) {
    const cases = [];
    let page_token = '';
    do {
      const reply = await this.call(this.duplicates, 'ListDuplicateCases', {
        ...filter,
        page_size: pageSize,
        page_token,
      });
      cases.push(...reply.duplicate_cases);
      page_token = reply.next_page_token;
    } while (page_token);
    return cases;
  }

  /** §11.9: an administrator's decision, a CaseVerdict ({duplicate_case, resolution, standing,
   * comment}) signed with the administrator's own key as every signed request is (§6); returns
   * the case after it (resolved once every deciding region's quorum agrees). */
  async resolveDuplicateCase(verdict) {
    const body = { standing: '', ...verdict };
    const reply = await this.signed('ResolveDuplicateCase', CONTENT_TYPES.caseVerdict, 'CaseVerdict', body, this.duplicates);
    return reply.duplicate_case;
  }

  /** Every block matching the filter, following page tokens. */
  async unitBlocks(filter) {
    const blocks = [];
    let page_token = '';
    do {
      const reply = await this.call(this.transfers, 'ListUnitBlocks', { ...filter, page_token });
      blocks.push(...reply.blocks);
      page_token = reply.next_page_token;
    } while (page_token);
    return blocks;
  }

  /** Every audit entry from sequence 1. */
  async auditEntries() {
    const entries = [];
    let start = '1';
    while (start !== '0') {
      const page = await this.call(this.audit, 'ListAuditEntries', { start_sequence: start, page_size: 0 });
      entries.push(...page.entries);
      start = page.next_sequence;
    }
    return entries;
  }

  async treeHead() {
    return (await this.call(this.audit, 'GetSignedTreeHead', {})).tree_head;
  }
}
