"""Staff sign in with the hospital's identity provider: OIDC/JWT bearer tokens from one configured
issuer, checked with PyJWT (signatures through ``cryptography``) against the issuer's JWKS.

Why PyJWT and not code of our own: the signature check, the JWK parsing and the claim checks are
exactly where hand-written code goes wrong (``alg: none``, an HS256 token "signed" with the public
RSA key as an HMAC secret). What this module adds is policy, each refusal a 401 naming its reason
class (``reason``), with nothing written anywhere:

- the token is bounded (:data:`MAX_TOKEN_CHARS`) before it is parsed;
- only the configured asymmetric algorithms (RS256, ES256, EdDSA; ``none`` and HS* are refused
  when the configuration is read), and the key is the JWKS key named by ``kid`` whose type fits;
- issuer, audience, ``exp`` and ``iat`` required; times checked against the service's injectable
  clock with a bounded skew (:data:`MAX_LEEWAY`), not the library's own wall clock;
- role and organisation come from configured claims and must be a role of the role table that may
  hold a token, and one of the configured organisations; the subject must be an identifier.

The caller becomes an :class:`~workflow.access.tokens.ApiToken` that exists only for the request:
id ``oidc:<issuer hash>:<subject>`` (the credential the access log and the audit trail name), the
role's scopes narrowed by the token's ``scope`` claim when that names any of ours (an IdP sends
``openid profile`` to every client; that alone narrows nothing), ``expires_at`` its ``exp``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from workflow.access.tokens import NOT_FOR_TOKENS, SCOPES, ApiToken, role_scopes
from workflow.cases.definitions import Definition
from workflow.clock import Clock
from workflow.errors import ConfigurationError, Unauthenticated
from workflow.service import inputs

ENV_ISSUER = "SECOND_OPINION_OIDC_ISSUER"
ENV_AUDIENCE = "SECOND_OPINION_OIDC_AUDIENCE"
ENV_JWKS = "SECOND_OPINION_OIDC_JWKS"
ENV_ORGANISATIONS = "SECOND_OPINION_OIDC_ORGANISATIONS"
ENV_CLAIMS = "SECOND_OPINION_OIDC_CLAIMS"
ENV_ALGORITHMS = "SECOND_OPINION_OIDC_ALGORITHMS"
ENV_LEEWAY = "SECOND_OPINION_OIDC_LEEWAY"
FIELDS = {"oidc_issuer": ENV_ISSUER, "oidc_audience": ENV_AUDIENCE, "oidc_jwks": ENV_JWKS,
          "oidc_organisations": ENV_ORGANISATIONS, "oidc_claims": ENV_CLAIMS, "oidc_algorithms": ENV_ALGORITHMS,
          "oidc_leeway": ENV_LEEWAY}  # fmt: skip
"""Each variable by its field of :class:`second_opinion.settings.Settings`."""

ALGORITHMS = ("RS256", "ES256", "EdDSA")
"""The only algorithms that may be configured: asymmetric, so the JWKS holds nothing secret."""
MAX_TOKEN_CHARS = 8192
"""A bearer JWT longer than this is refused unparsed (an IdP's access token is 1-2 KB)."""
MAX_JWKS_BYTES = 256 * 1024
JWKS_TIMEOUT = 5.0
JWKS_TTL = 300.0
"""A JWKS fetched from a URL is used for five minutes; an unknown ``kid`` refetches sooner, but at
most once every :data:`JWKS_MIN_REFETCH` seconds (a flood of made-up kids is not a flood of fetches)."""
JWKS_MIN_REFETCH = 30.0
DEFAULT_LEEWAY = 60
MAX_LEEWAY = 300
DEFAULT_CLAIMS = {"subject": "sub", "role": "second_opinion_role", "organisation": "second_opinion_org"}


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    audience: str
    jwks: str
    """A file path, or an https URL (http only to localhost)."""
    organisations: frozenset[str]
    claims: Mapping[str, str]
    algorithms: tuple[str, ...] = ALGORITHMS
    leeway: int = DEFAULT_LEEWAY

    @property
    def issuer_hash(self) -> str:
        """Short and stable: the credential id names the issuer without its (long) URL."""
        return hashlib.sha256(self.issuer.encode()).hexdigest()[:12]


def oidc_from_env(env: Mapping[str, str] | None = None) -> OidcSettings | None:
    """The OIDC settings, or None when ``SECOND_OPINION_OIDC_ISSUER`` is unset (API tokens only).
    Every mistake is a :class:`ConfigurationError` naming the variable, before anything is served.
    The variables are read by the one settings object (:mod:`second_opinion.settings`)."""
    from second_opinion import settings

    given = {name: settings.env_text(field, env) for field, name in FIELDS.items()}
    env = {name: value for name, value in given.items() if value}  # unset and empty alike
    issuer = env.get(ENV_ISSUER, "").strip()
    if not issuer:
        return None
    for name in (ENV_AUDIENCE, ENV_JWKS, ENV_ORGANISATIONS):
        if not env.get(name, "").strip():
            raise ConfigurationError(name, f"must be set when {ENV_ISSUER} is")
    organisations = frozenset(o.strip() for o in env[ENV_ORGANISATIONS].split(",") if o.strip())
    for organisation in organisations:
        if not inputs.IDENTIFIER.fullmatch(organisation):
            raise ConfigurationError(ENV_ORGANISATIONS, f"{organisation!r} is not an organisation id (3-64 of "
                                     "letters, digits and . _ : -)")  # fmt: skip
    claims = dict(DEFAULT_CLAIMS)
    for pair in filter(None, (p.strip() for p in env.get(ENV_CLAIMS, "").split(","))):
        key, _, claim = pair.partition("=")
        if key.strip() not in DEFAULT_CLAIMS or not claim.strip():
            raise ConfigurationError(ENV_CLAIMS, f"{pair!r} is not one of subject=, role=, organisation= a claim name")
        claims[key.strip()] = claim.strip()
    algorithms = tuple(a.strip() for a in env.get(ENV_ALGORITHMS, ",".join(ALGORITHMS)).split(",") if a.strip())
    for algorithm in algorithms or ("(none)",):
        if algorithm not in ALGORITHMS:
            raise ConfigurationError(ENV_ALGORITHMS, f"{algorithm!r} is refused; allowed: {', '.join(ALGORITHMS)}")
    leeway = env.get(ENV_LEEWAY, str(DEFAULT_LEEWAY)).strip()
    if not leeway.isdigit() or int(leeway) > MAX_LEEWAY:
        raise ConfigurationError(ENV_LEEWAY, f"must be whole seconds from 0 to {MAX_LEEWAY}")
    return OidcSettings(issuer, env[ENV_AUDIENCE].strip(), env[ENV_JWKS].strip(), organisations, claims,
                        algorithms, int(leeway))  # fmt: skip


class Jwks:
    """The issuer's public keys: read from a file once (a missing or garbled file is a startup
    error), or fetched from a URL with a timeout, a size bound and a TTL cache."""

    def __init__(self, source: str, *, monotonic: Callable[[], float] = time.monotonic,
                 fetch: Callable[[str], bytes] | None = None) -> None:  # fmt: skip
        self._source = source
        self._monotonic = monotonic
        self._fetch = fetch or _fetch
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        if _is_url(source):
            scheme, host = urlsplit(source).scheme, urlsplit(source).hostname
            if scheme != "https" and host not in ("localhost", "127.0.0.1", "::1"):
                raise ConfigurationError(ENV_JWKS, "a JWKS URL must be https (http only to localhost)")
        else:
            path = Path(source)
            try:
                if path.stat().st_size > MAX_JWKS_BYTES:
                    raise ConfigurationError(ENV_JWKS, f"{source} is larger than {MAX_JWKS_BYTES} bytes")
                self._keys = _parse(path.read_bytes(), source)
            except OSError as exc:
                raise ConfigurationError(ENV_JWKS, f"cannot read the JWKS file {source} ({exc.strerror})") from None

    def key(self, kid: str | None) -> jwt.PyJWK:
        if _is_url(self._source):
            now = self._monotonic()
            age = None if self._fetched_at is None else now - self._fetched_at
            if age is None or age > JWKS_TTL or (kid not in self._keys and age > JWKS_MIN_REFETCH):
                self._refresh(now)
            if not self._keys:  # the last fetch failed and none ever succeeded: say so, not "unknown key"
                raise Unauthenticated("the issuer's keys cannot be fetched now", reason="jwks-unavailable")
        found = self._keys.get(kid) or (next(iter(self._keys.values())) if kid is None and len(self._keys) == 1
                                        else None)  # fmt: skip
        if found is None:
            raise Unauthenticated("the token is signed with a key the issuer does not list", reason="key")
        return found

    def _refresh(self, now: float) -> None:
        self._fetched_at = now  # the attempt counts: while the issuer is down, at most one fetch per interval
        try:
            self._keys = _parse(self._fetch(self._source), self._source)
        except (httpx.HTTPError, ConfigurationError) as exc:
            if not self._keys:  # keep serving with the last good keys; without any, nobody is let in
                raise Unauthenticated(f"the issuer's keys cannot be fetched now ({type(exc).__name__})",
                                      reason="jwks-unavailable") from None  # fmt: skip
        self._fetched_at = now


def _is_url(source: str) -> bool:
    return source.startswith(("https://", "http://"))


def _fetch(url: str) -> bytes:
    with httpx.Client(timeout=JWKS_TIMEOUT, follow_redirects=False) as client, client.stream("GET", url) as reply:
        reply.raise_for_status()
        body = b""
        for chunk in reply.iter_bytes():
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise ConfigurationError(ENV_JWKS, f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
        return body


def _parse(raw: bytes, source: str) -> dict[str | None, jwt.PyJWK]:
    try:
        keys = jwt.PyJWKSet.from_dict(json.loads(raw)).keys
    except (ValueError, TypeError, AttributeError, jwt.PyJWKSetError, jwt.PyJWKError) as exc:
        raise ConfigurationError(ENV_JWKS, f"{source} is not a JWKS with usable public keys ({exc})") from None
    if any(k.key_type == "oct" for k in keys):
        raise ConfigurationError(ENV_JWKS, f"{source} holds a symmetric (oct) key: only public keys belong there")
    return {k.key_id: k for k in keys}


_REASONS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.InvalidAudienceError, "audience", "the token is for another audience"),
    (jwt.InvalidIssuerError, "issuer", "the token is from another issuer"),
    (jwt.MissingRequiredClaimError, "claims", "the token lacks a required claim"),
    (jwt.InvalidAlgorithmError, "algorithm", "the token's algorithm is not one this service accepts"),
    (jwt.InvalidSignatureError, "signature", "the token's signature does not hold"),
    (jwt.PyJWKError, "key", "the token's key does not fit its algorithm"),
    (jwt.InvalidTokenError, "malformed", "the token is not a well-formed JWT"),
)
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}


class OidcVerifier:
    """A bearer JWT -> the token of the request, or :class:`Unauthenticated` with a ``reason``."""

    def __init__(self, settings: OidcSettings, definition: Definition, clock: Clock, jwks: Jwks | None = None) -> None:
        self.settings = settings
        self._definition = definition
        self._clock = clock
        self._jwks = jwks or Jwks(settings.jwks)
        self._roles = {r.name for r in definition.roles if r.sees is not None and r.name not in NOT_FOR_TOKENS}

    @staticmethod
    def looks_like_jwt(bearer: str) -> bool:
        """A JWS compact serialisation (``header.payload.signature``); API token secrets have no dots."""
        return bearer.count(".") == 2 and bearer.startswith("eyJ")

    def verify(self, bearer: str) -> ApiToken:
        s = self.settings
        if len(bearer) > MAX_TOKEN_CHARS:
            raise Unauthenticated(f"the token is longer than {MAX_TOKEN_CHARS} characters", reason="too-large")
        try:
            header = jwt.get_unverified_header(bearer)
            algorithm = header.get("alg")
            if algorithm not in s.algorithms:  # "none", HS256 with the public key, anything not configured
                raise jwt.InvalidAlgorithmError(str(algorithm))
            key = self._jwks.key(header.get("kid") if isinstance(header.get("kid"), str) else None)
            if key.key_type != _KEY_TYPES[algorithm]:
                raise jwt.PyJWKError(f"{key.key_type} key for {algorithm}")
            claims: dict[str, Any] = jwt.decode(
                bearer, key.key, algorithms=[algorithm], audience=s.audience, issuer=s.issuer,
                options={"require": ["exp", "iat", "iss", "aud"], "verify_exp": False, "verify_iat": False,
                         "verify_nbf": False},
            )  # fmt: skip
        except Unauthenticated:
            raise
        except jwt.PyJWTError as exc:
            reason, problem = next((r, p) for cls, r, p in _REASONS if isinstance(exc, cls))
            raise Unauthenticated(problem, reason=reason) from None
        return self._token(claims)

    def _token(self, claims: dict[str, Any]) -> ApiToken:
        s = self.settings
        now = self._clock.now()
        skew = timedelta(seconds=s.leeway)
        expires, issued = _instant(claims.get("exp")), _instant(claims.get("iat"))
        if expires is None or issued is None:
            raise Unauthenticated("the token's exp or iat is not a time", reason="claims")
        if now >= expires + skew:
            raise Unauthenticated("the token expired; sign in again", reason="expired")
        nbf = _instant(claims.get("nbf")) if "nbf" in claims else issued
        if nbf is None or now + skew < max(issued, nbf):
            raise Unauthenticated("the token is not valid yet (check the clocks)", reason="not-yet-valid")
        subject, role, organisation = (claims.get(s.claims[k]) for k in ("subject", "role", "organisation"))
        if not isinstance(subject, str) or not inputs.IDENTIFIER.fullmatch(subject):
            raise Unauthenticated(f"the {s.claims['subject']!r} claim is not a usable subject", reason="subject")
        if not isinstance(role, str) or role not in self._roles:  # a list of roles (Keycloak, Entra): refused
            raise Unauthenticated(f"the {s.claims['role']!r} claim is not a role that may sign in", reason="role")
        if not isinstance(organisation, str) or organisation not in s.organisations:
            raise Unauthenticated(f"the {s.claims['organisation']!r} claim is not a configured organisation",
                                  reason="organisation")  # fmt: skip
        assert isinstance(role, str) and isinstance(organisation, str)
        scopes = role_scopes(self._definition, role)
        asked = set(claims["scope"].split()) if isinstance(claims.get("scope"), str) else set()
        if asked & set(SCOPES):  # naming any of ours, the OAuth scopes narrow further, as a token's do;
            scopes = tuple(x for x in scopes if x in asked)  # naming none ("openid profile"): the role's
        return ApiToken(f"oidc:{s.issuer_hash}:{subject}", "", subject, role, organisation, issued,
                        expires_at=expires, scopes=scopes)  # fmt: skip


def _instant(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
