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
