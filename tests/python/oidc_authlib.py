"""Authlib as a third-party OpenID Connect relying party against Hearth over HTTPS.

Usage: oidc_authlib.py BASE_URL CA_FILE USER PASSWORD

Discovers the provider, runs the authorization code flow with PKCE (S256) for the public `web`
client, signs in through the HTML login form like a browser, exchanges the code, validates the ID
token against the JWKS (signature, iss, aud, exp, iat, nonce, at_hash), calls WebDAV and OCS with
the access token, refreshes, revokes the refresh token and checks that it is refused afterwards.
Only CA_FILE is trusted. Prints a JSON summary on stdout; any failed step raises (exit status 1).
"""

import json
import sys
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

with warnings.catch_warnings():
    # Authlib 1.6+ marks authlib.jose as deprecated in favour of joserfc; it stays supported
    # until Authlib 2.0, and its OIDC claim classes (CodeIDToken) build on it.
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.oidc.core import CodeIDToken

CLIENT_ID = "web"
PROPFIND = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
)


class LoginForm(HTMLParser):
    """Collects the first form's action and its hidden fields (the CSRF token)."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.hidden = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")


def session(ca):
    s = requests.Session()
    s.verify = ca
    # No proxies or REQUESTS_CA_BUNDLE from the environment: only the CA file is trusted.
    s.trust_env = False
    return s


def oauth_error(exc):
    return getattr(exc, "error", None) or type(exc).__name__


def main():
    base, ca, user, password = sys.argv[1:5]
    summary = {}
    http = session(ca)
    meta = http.get(base + "/.well-known/openid-configuration").json()
    assert meta["issuer"] == base, meta["issuer"]
    summary["issuer"] = meta["issuer"]

    rp = OAuth2Session(
        CLIENT_ID,
        scope="openid profile email offline_access",
        redirect_uri=base + "/oidc-callback.html",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    rp.verify = ca
    rp.trust_env = False
    verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    query = parse_qs(urlparse(url).query)
    assert query["code_challenge_method"] == ["S256"], query

    # The browser: open the login form, post the credentials with its CSRF field and cookie.
    browser = session(ca)
    r = browser.get(url, allow_redirects=False)
    assert r.status_code == 200, r.status_code
    form = LoginForm()
    form.feed(r.text)
    assert "login" in form.hidden, r.text
    fields = dict(form.hidden, user=user, password=password)
    r = browser.post(urljoin(url, form.action), data=fields, allow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.text)
    callback = r.headers["Location"]
    assert callback.startswith(base + "/oidc-callback.html?"), callback

    # Code exchange (Authlib checks the state and sends the PKCE verifier).
    token = rp.fetch_token(
        meta["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )
    summary["token_type"] = token["token_type"]

    # The ID token against the JWKS: ES256 only; iss, aud, exp, iat, nonce and at_hash.
    jwks = JsonWebKey.import_key_set(http.get(meta["jwks_uri"]).json())
    jwt = JsonWebToken(meta["id_token_signing_alg_values_supported"])
    options = {"iss": {"essential": True, "value": meta["issuer"]}}

    def id_claims(id_token, expected_nonce):
        claims = jwt.decode(
            id_token,
            jwks,
            claims_cls=CodeIDToken,
            claims_options=options,
            claims_params={
                "nonce": expected_nonce,
                "client_id": CLIENT_ID,
                "access_token": token["access_token"],
            },
        )
        claims.validate(leeway=30)
        return claims

    claims = id_claims(token["id_token"], nonce)
    summary["id_token"] = {
        "iss": claims["iss"],
        "aud": claims["aud"],
        "preferred_username": claims.get("preferred_username"),
        "nonce_ok": claims["nonce"] == nonce,
    }
    try:
        id_claims(token["id_token"], "another-nonce")
        summary["wrong_nonce_rejected"] = False
    except Exception as e:  # Authlib 1.9 raises joserfc's InvalidClaimError here, older ones its own.
        summary["wrong_nonce_rejected"] = "nonce" in str(e)

    # The access token on WebDAV and OCS (OAuth2Session adds the Bearer header).
    dav = base + "/remote.php/dav/files/" + user + "/"
    summary["propfind"] = rp.request("PROPFIND", dav, headers={"Depth": "0"}, data=PROPFIND).status_code
    r = rp.get(base + "/ocs/v2.php/cloud/user?format=json")
    summary["ocs"] = r.status_code
    summary["ocs_id"] = r.json()["ocs"]["data"]["id"]

    # Refresh: a rotated refresh token and a new access token that works.
    first_refresh = token["refresh_token"]
    token = rp.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
    summary["refresh_rotated"] = token["refresh_token"] != first_refresh
    summary["refreshed_propfind"] = rp.request(
        "PROPFIND", dav, headers={"Depth": "0"}, data=PROPFIND
    ).status_code

    # Revocation (RFC 7009): the refresh token, and with it the grant, is dead afterwards.
    access = token["access_token"]
    r = rp.revoke_token(
        meta["revocation_endpoint"],
        token=token["refresh_token"],
        token_type_hint="refresh_token",
    )
    summary["revocation"] = r.status_code
    try:
        rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
        summary["refresh_after_revocation"] = "accepted"
    except Exception as e:  # Authlib raises OAuthError with the server's error code.
        summary["refresh_after_revocation"] = oauth_error(e)
    summary["propfind_after_revocation"] = http.request(
        "PROPFIND",
        dav,
        headers={"Depth": "0", "Authorization": "Bearer " + access},
        data=PROPFIND,
    ).status_code
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
