// The identity keys of a project (docs/protocol.md §7.4): the owner's unified social credit code
// (GB 32100-2015), the site's coordinates and datum, the grid metering account. Each check returns
// the value as given, or throws an IdentityKeyError naming the key at fault. Values are never
// rewritten (a latitude "31.048120" stays "31.048120").

/** The 31 characters of GB 32100-2015, in the order of their values 0..30 (no I, O, S, V, Z). */
export const CREDIT_CODE_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';

/** Registration authority (position 1) → the categories (position 2) it assigns (§7.4). */
export const CREDIT_CODE_CATEGORIES = {
  1: '1239',
  2: '19',
  3: '1234569',
  4: '19',
  5: '123459',
  6: '129',
  7: '129',
  8: '129',
  9: '1239',
  A: '19',
  G: '19',
  J: '19',
  N: '1239',
  Q: '1239',
  Y: '1',
};

/** The datums a site may name; absent means WGS84. */
export const DATUMS = ['WGS84', 'GCJ02', 'BD09'];

export class IdentityKeyError extends Error {
  /** key: owner_credit_code, latitude, longitude, datum or grid_account. */
  constructor(key, message) {
    super(message);
    this.key = key;
  }
}

/** The check character (position 18) of the 17 characters given: 31 − (Σ vᵢ·3^(i−1) mod 31) mod 31. */
export function creditCodeCheckChar(first17) {
  if (first17.length !== 17) throw new IdentityKeyError('owner_credit_code', 'the body of a credit code is 17 characters');
  let total = 0;
  let weight = 1;
  for (const char of first17) {
    const value = CREDIT_CODE_ALPHABET.indexOf(char);
    if (value < 0) throw new IdentityKeyError('owner_credit_code', `${JSON.stringify(char)} is not a GB 32100-2015 character`);
    total += value * weight;
    weight = (weight * 3) % 31;
  }
  return CREDIT_CODE_ALPHABET[(31 - (total % 31)) % 31];
}

/** A unified social credit code: 18 characters of the alphabet, a known authority and category,
 * a 6-digit county code (positions 3–8), the right check character. */
export function checkCreditCode(code) {
  const fail = (why) => {
    throw new IdentityKeyError('owner_credit_code', `owner credit code ${JSON.stringify(code)} ${why}`);
  };
  if ([...code].length !== 18) fail('is not 18 characters');
  for (const char of code) if (!CREDIT_CODE_ALPHABET.includes(char)) fail(`has ${JSON.stringify(char)}, not a GB 32100-2015 character`);
  const categories = CREDIT_CODE_CATEGORIES[code[0]];
  if (categories === undefined) fail(`starts with ${code[0]}, not a registration authority`);
  if (!categories.includes(code[1])) fail(`has category ${code[1]}, which authority ${code[0]} does not assign`);
  if (!/^[0-9]{6}$/.test(code.slice(2, 8))) fail('has no 6-digit county code at positions 3-8');
  if (creditCodeCheckChar(code.slice(0, 17)) !== code[17]) fail('has the wrong check character');
  return code;
}

const COORDINATE = /^-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?$/;

/** Plain decimal degrees (optional '-', no '+', exponent, blank or redundant leading zero),
 * at most 6 decimals, |value| ≤ limit (compared exactly, on the text). */
function checkCoordinate(key, text, limit) {
  const match = COORDINATE.exec(text);
  if (!match) throw new IdentityKeyError(key, `${key} ${JSON.stringify(text)} is not plain decimal degrees with at most 6 decimals`);
  const whole = BigInt(match[1]);
  const fraction = (match[2] || '').slice(1);
  if (whole > BigInt(limit) || (whole === BigInt(limit) && /[1-9]/.test(fraction))) {
    throw new IdentityKeyError(key, `${key} ${text} is outside [-${limit}, ${limit}]`);
  }
  return text;
}

export const checkLatitude = (text) => checkCoordinate('latitude', text, 90);
export const checkLongitude = (text) => checkCoordinate('longitude', text, 180);

/** A site given by its three optional parts (null: not given); returns its datum (null: no
 * site). Checked in order: latitude, longitude, both or neither, then the datum. */
export function checkSite(latitude, longitude, datum) {
  if (latitude !== null) checkLatitude(latitude);
  if (longitude !== null) checkLongitude(longitude);
  if ((latitude === null) !== (longitude === null)) {
    const missing = longitude === null ? 'longitude' : 'latitude';
    throw new IdentityKeyError(missing, `${missing} is missing: a site needs both coordinates`);
  }
  if (datum !== null && !DATUMS.includes(datum)) throw new IdentityKeyError('datum', `datum ${JSON.stringify(datum)} is not one of ${DATUMS}`);
  if (latitude === null) {
    if (datum !== null) throw new IdentityKeyError('datum', 'a datum needs a site');
    return null;
  }
  return datum ?? 'WGS84';
}

/** A grid metering account: 10 to 20 ASCII digits, a string (leading zeros count). */
export function checkGridAccount(text) {
  if (!/^[0-9]{10,20}$/.test(text)) throw new IdentityKeyError('grid_account', `grid account ${JSON.stringify(text)} is not 10 to 20 digits`);
  return text;
}
