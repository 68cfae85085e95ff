"""Verifies a Trellis access token with PyJWT, a JWT implementation independent of ours, against
the JWKS Trellis serves. Reads {"jwks", "token", "issuer", "audience"} as JSON on standard input;
prints {"kid", "alg", "sub"} on success, exits non-zero with the reason otherwise."""

import json
import sys

try:
    import jwt
    from jwt import PyJWK
except ImportError as e:  # never skip: the caller fails loudly
    sys.exit(f"PyJWT with its crypto extra is required (pip3 install 'PyJWT[crypto]'): {e}")


def main() -> None:
    given = json.load(sys.stdin)
    token = given["token"]
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        sys.exit(f"typ is {header.get('typ')!r}, not at+jwt")
    by_kid = {k["kid"]: k for k in given["jwks"]["keys"]}
    jwk = by_kid.get(header.get("kid"))
    if jwk is None:
        sys.exit(f"kid {header.get('kid')!r} is not in the JWKS")
    for private in ("d", "p", "q", "dp", "dq", "qi"):
        if private in jwk:
            sys.exit(f"the JWKS carries the private parameter {private}")
    key = PyJWK.from_dict(jwk)
    claims = jwt.decode(
        token,
        key=key.key,
        algorithms=[jwk["alg"]],  # only the key's own algorithm
        audience=given["audience"],
        issuer=given["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    print(json.dumps({"kid": header["kid"], "alg": header["alg"], "sub": claims["sub"]}))


if __name__ == "__main__":
    main()
