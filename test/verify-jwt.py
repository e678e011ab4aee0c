"""Verifies a JWT the way a service trusting Atrium would, with PyJWT and
cryptography (libraries Atrium does not use): the key from the issuer's JWKS
URL (found through its discovery document), then signature, issuer,
audience and expiry. Prints one JSON line: {"ok": true, "claims": ..., "kid": ...}
or {"ok": false, "error": "<exception class>", "message": ...}.

    python3 verify-jwt.py <issuer> <audience> < token
"""
import json
import sys
import urllib.request

import jwt

issuer, audience = sys.argv[1], sys.argv[2]
token = sys.stdin.read().strip()
try:
    with urllib.request.urlopen(issuer.rstrip('/') + '/.well-known/openid-configuration', timeout=10) as r:
        discovery = json.load(r)
    if discovery['issuer'] != issuer:
        raise ValueError('discovery names another issuer: %s' % discovery['issuer'])
    client = jwt.PyJWKClient(discovery['jwks_uri'], cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=['RS256'],
        audience=audience,
        issuer=issuer,
        options={'require': ['iss', 'sub', 'aud', 'exp', 'iat']},
    )
    print(json.dumps({'ok': True, 'claims': claims, 'kid': jwt.get_unverified_header(token).get('kid')}))
except Exception as e:  # noqa: BLE001 - the class name is the answer
    print(json.dumps({'ok': False, 'error': type(e).__name__, 'message': str(e)}))
