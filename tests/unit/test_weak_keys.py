"""The small-order Ed25519 keys the gateway refuses are exactly the points of small order,
checked here with the curve's own arithmetic (not taken on trust from a list)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.security.signing import _SMALL_ORDER_Y, is_weak_public_key, raw_public_key

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int]
IDENTITY: Point = (0, 1)


def decode(raw: bytes) -> Point | None:
    """The point a 32-byte encoding names (non-canonical y reduced), None when off the curve."""
    n = int.from_bytes(raw, "little")
    y, sign = (n & ((1 << 255) - 1)) % P, n >> 255
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x & 1 != sign:
        x = (-x) % P
    return (x, y)


def add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return (x3, y3)


def times8(p: Point) -> Point:
    for _ in range(3):
        p = add(p, p)
    return p


def encodings(y: int) -> list[bytes]:
    return [(y | (sign << 255)).to_bytes(32, "little") for sign in (0, 1)]


def test_every_blocked_encoding_on_the_curve_is_a_point_of_small_order() -> None:
    points = set()
    for y in _SMALL_ORDER_Y:
        for raw in encodings(y):
            point = decode(raw)
            if point is not None:
                assert times8(point) == IDENTITY, raw.hex()
                points.add(point)
    # The torsion subgroup of Ed25519 has exactly 8 points: all of them are blocked.
    assert len(points) == 8


def test_weak_keys_are_recognised_in_either_sign_and_real_keys_are_not() -> None:
    for y in _SMALL_ORDER_Y:
        assert all(is_weak_public_key(raw) for raw in encodings(y))
    for _ in range(50):
        key = raw_public_key(ed25519.Ed25519PrivateKey.generate())
        assert not is_weak_public_key(key)
        point = decode(key)
        assert point is not None and times8(point) != IDENTITY


def test_a_forged_signature_verifies_under_the_identity_key_which_is_why_it_is_refused() -> None:
    """With A = identity and R = identity, s = 0 satisfies [s]B = R + [k]A for any message:
    the signature library accepts it, so only refusing the key protects attribution."""
    identity = (1).to_bytes(32, "little")
    forged = identity + bytes(32)
    key = ed25519.Ed25519PublicKey.from_public_bytes(identity)
    for message in (b"issue 10 t to me", b"another message"):
        key.verify(forged, message)  # raises InvalidSignature if the library refused it
    assert is_weak_public_key(identity)
