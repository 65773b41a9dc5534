// §2.1: the client accepts only a server certificate naming the gateway.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkGatewayIdentity } from '../src/client.mjs';

test('the gateway SAN URI is required, alone', () => {
  const gateway = 'DNS:localhost, IP Address:127.0.0.1, URI:spiffe://yrd-interop/gateway';
  assert.equal(checkGatewayIdentity('127.0.0.1', { subjectaltname: gateway }), undefined);
  const registry = 'URI:spiffe://yrd-interop/region/310000/registry';
  assert.ok(checkGatewayIdentity('127.0.0.1', { subjectaltname: registry }) instanceof Error);
  assert.ok(checkGatewayIdentity('127.0.0.1', { subjectaltname: `${gateway}, ${registry}` }) instanceof Error);
  assert.ok(checkGatewayIdentity('127.0.0.1', {}) instanceof Error);
});
