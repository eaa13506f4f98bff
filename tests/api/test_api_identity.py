"""Issue 19 over HTTP: expired tokens and missing scopes as problem documents, and bearer JWTs of
a configured identity provider (a local key and a JWKS file: no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi.testclient import TestClient

from second_opinion.api import create_app
from second_opinion.oidc import MAX_TOKEN_CHARS, Jwks, OidcVerifier, oidc_from_env
from tests.api_support import Api, problem
from tests.conftest import BACKENDS
from workflow import CaseService
from workflow.errors import ConfigurationError

ISSUER, AUDIENCE, ORG = "https://idp.example-hospital.nl/realms/staff", "second-opinion", "org-a"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str, algorithm: type[Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**found, "kid": kid}


def jwks_file(tmp_path: Path) -> Path:
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

    keys = [_jwk(RSA_KEY, "rsa-1", RSAAlgorithm), _jwk(EC_KEY, "ec-1", ECAlgorithm),
            _jwk(ED_KEY, "ed-1", OKPAlgorithm)]  # fmt: skip
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path


def env(path: Path, **extra: str) -> dict[str, str]:
    return {"SECOND_OPINION_OIDC_ISSUER": ISSUER, "SECOND_OPINION_OIDC_AUDIENCE": AUDIENCE,
            "SECOND_OPINION_OIDC_JWKS": str(path), "SECOND_OPINION_OIDC_ORGANISATIONS": f"{ORG},org-b",
            **extra}  # fmt: skip


@pytest.fixture
def idp(service: CaseService, tmp_path: Path) -> Iterator[Api]:
    settings = oidc_from_env(env(jwks_file(tmp_path)))
    assert settings is not None
    api = Api(service)
    api.app = create_app(service, oidc=OidcVerifier(settings, service.runtime.definition, service.runtime.clock))
    api.client = TestClient(api.app, raise_server_exceptions=False)
    yield api


def claims(clock: Any, **changes: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    found = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dr-jansen-7", "iat": now, "exp": now + 300,
             "second_opinion_role": "second_opinion_doctor", "second_opinion_org": ORG, **changes}  # fmt: skip
    return {k: v for k, v in found.items() if v is not None}


def signed(body: dict[str, Any], key: Any = RSA_KEY, algorithm: str = "RS256", kid: str = "rsa-1") -> str:
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_valid_jwt_signs_in_and_its_reads_name_the_credential(idp: Api, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = idp.open(ORG)
    for key, algorithm, kid in ((RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1"), (ED_KEY, "EdDSA", "ed-1")):
        answer = idp.client.get(f"/cases/{case_id}", headers=bearer(signed(claims(clock), key, algorithm, kid)))
        assert answer.status_code == 200, answer.text
    log = idp.client.get(f"/cases/{case_id}/access-log", headers=idp.auth("auditor", ORG)).json()
    reads = [r for r in log if r["actor_id"] == "dr-jansen-7"]
    issuer_hash = hashlib.sha256(ISSUER.encode()).hexdigest()[:12]
    assert [(r["kind"], r["channel"], r["credential"]) for r in reads] == \
        [("case", "api", f"oidc:{issuer_hash}:dr-jansen-7")] * 3  # fmt: skip


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_the_role_and_its_scope_claim_bound_what_a_jwt_may_do(idp: Api, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = idp.open(ORG)
    doctor = bearer(signed(claims(clock, scope="openid cases:read")))
    body = {"event": "cancel", "reason": "test"}
    refused = problem(idp.client.post(f"/cases/{case_id}/events", json=body, headers=doctor), 403, "missing-scope")
    assert refused["scope"] == "cases:write"
    plain = bearer(signed(claims(clock, scope="openid profile")))  # none of ours: the role's scopes
    assert idp.client.post(f"/cases/{case_id}/check", json=body, headers=plain).status_code == 200
    fired = idp.client.post(f"/cases/{case_id}/events", json=body, headers=plain)  # the role decides, not a scope
    assert fired.json().get("type") != "urn:second-opinion:problem:missing-scope", fired.text
    other = bearer(signed(claims(clock, second_opinion_org="org-b")))  # another organisation: the case is unknown
    problem(idp.client.get(f"/cases/{case_id}", headers=other), 404, "unknown-case")


def _forged_hs256() -> str:
    """The algorithm-confusion attack: HS256 "signed" with the issuer's public key as the secret."""
    pem, spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    public = RSA_KEY.public_key().public_bytes(pem, spki)
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = _b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "evil-1", "iat": 1795424400, "exp": 4102444800,
                            "second_opinion_role": "auditor", "second_opinion_org": ORG}).encode())  # fmt: skip
    return f"{head}.{body}.{_b64(hmac.new(public, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def _unsigned(clock: Any) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(claims(clock)).encode())}."


REFUSED = {
    "expired": lambda c: signed(claims(c, exp=int(c.now().timestamp()) - 61)),  # past the 60 s skew
    "issuer": lambda c: signed(claims(c, iss="https://evil.example/")),
    "audience": lambda c: signed(claims(c, aud="another-service")),
    "signature": lambda c: signed(claims(c), OTHER_KEY),  # the right kid, the wrong key
    "key": lambda c: signed(claims(c), OTHER_KEY, kid="unknown-kid"),
    "algorithm": _unsigned,
    "algorithm-hs256": lambda c: _forged_hs256(),
    "role": lambda c: signed(claims(c, second_opinion_role="system")),
    "role-unknown": lambda c: signed(claims(c, second_opinion_role="superuser")),
    "role-list": lambda c: signed(claims(c, second_opinion_role=["coordinator"])),  # as Keycloak or Entra send roles
    "organisation-object": lambda c: signed(claims(c, second_opinion_org={"id": "org-a"})),
    "organisation": lambda c: signed(claims(c, second_opinion_org="org-z")),
    "subject": lambda c: signed(claims(c, sub="x")),
    "claims": lambda c: signed(claims(c, exp=None)),
    "not-yet-valid": lambda c: signed(claims(c, iat=int(c.now().timestamp()) + 3600)),
    "malformed": lambda c: _b64(b'{"alg": RS256, "kid"') + ".e30.c2ln",  # a header that is not JSON
    "too-large": lambda c: signed(claims(c, padding="x" * MAX_TOKEN_CHARS)),
}


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_jwt_is_a_401_naming_the_reason_and_nothing_is_written(idp: Api, clock, case: str) -> None:  # type: ignore[no-untyped-def]
    case_id = idp.open(ORG)
    with idp.service.unit_of_work(False) as uow:
        before = len(uow.access.all())
    answer = idp.client.get(f"/cases/{case_id}", headers=bearer(REFUSED[case](clock)))
    body = problem(answer, 401, "unauthenticated")
    expected = {"algorithm-hs256": "algorithm", "role-unknown": "role", "role-list": "role",
                "organisation-object": "organisation"}.get(case, case)  # fmt: skip
    assert body["reason"] == expected
    assert "evil" not in body["detail"] and "Traceback" not in answer.text
    with idp.service.unit_of_work(False) as uow:
        assert len(uow.access.all()) == before  # nothing written


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_an_expired_api_token_and_a_missing_scope_are_problem_documents(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    api = Api(service)
    case_id = api.open(ORG)
    reader = {**bearer(api._tokens.create("desk-2", "coordinator", ORG, scopes=["cases:read"])[0])}
    body = {"event": "cancel", "reason": "test"}
    refused = problem(api.client.post(f"/cases/{case_id}/events", json=body, headers=reader), 403, "missing-scope")
    assert refused["scope"] == "cases:write" and "cases:write" in refused["detail"]
    clock.advance(timedelta(days=90))
    expired = problem(api.client.get(f"/cases/{case_id}", headers=reader), 401, "unauthenticated")
    assert expired["reason"] == "expired" and "expired" in expired["detail"]
    unknown = problem(api.client.get(f"/cases/{case_id}", headers=bearer("sotk_nobody")), 401, "unauthenticated")
    assert "expired" not in unknown["detail"]  # an unknown secret learns nothing about which tokens exist


def test_the_configuration_refuses_what_would_weaken_it(tmp_path: Path) -> None:
    path = jwks_file(tmp_path)
    assert oidc_from_env({}) is None  # unset: API tokens only
    for extra, problem_text in (
        ({"SECOND_OPINION_OIDC_ALGORITHMS": "RS256,none"}, "'none' is refused"),
        ({"SECOND_OPINION_OIDC_ALGORITHMS": "HS256"}, "'HS256' is refused"),
        ({"SECOND_OPINION_OIDC_LEEWAY": "3600"}, "0 to 300"),
        ({"SECOND_OPINION_OIDC_CLAIMS": "groups=roles"}, "not one of"),
        ({"SECOND_OPINION_OIDC_AUDIENCE": ""}, "must be set"),
        ({"SECOND_OPINION_OIDC_ORGANISATIONS": "org-a,o/b"}, "'o/b' is not an organisation id"),
    ):
        with pytest.raises(ConfigurationError, match=problem_text):
            oidc_from_env(env(path, **extra))
    settings = oidc_from_env(env(path, SECOND_OPINION_OIDC_CLAIMS="role=groups, organisation=hospital"))
    assert settings is not None and dict(settings.claims) == {"subject": "sub", "role": "groups",
                                                               "organisation": "hospital"}  # fmt: skip


def test_a_missing_or_garbled_jwks_file_is_a_clear_startup_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SECOND_OPINION_OIDC_JWKS: cannot read the JWKS file"):
        Jwks(str(tmp_path / "absent.json"))
    garbled = tmp_path / "garbled.json"
    for text in ("{not json", '{"keys": "no"}', '{"keys": [{"kty": "RSA"}]}'):
        garbled.write_text(text)
        with pytest.raises(ConfigurationError, match="is not a JWKS with usable public keys"):
            Jwks(str(garbled))
    garbled.write_text(json.dumps({"keys": [{"kty": "oct", "k": _b64(b"secret"), "kid": "s"}]}))
    with pytest.raises(ConfigurationError, match="symmetric"):
        Jwks(str(garbled))
    with pytest.raises(ConfigurationError, match="must be https"):
        Jwks("http://idp.example/jwks")


def test_a_jwks_url_is_cached_for_its_ttl_and_refetched_for_an_unknown_kid(tmp_path: Path) -> None:
    raw = jwks_file(tmp_path).read_bytes()
    now, fetches = [0.0], []

    def fetch(url: str) -> bytes:
        fetches.append(url)
        return raw

    keys = Jwks("https://idp.example/jwks", monotonic=lambda: now[0], fetch=fetch)
    assert keys.key("rsa-1").key_id == "rsa-1" and len(fetches) == 1
    now[0] = 10.0
    keys.key("ec-1")
    assert len(fetches) == 1  # cached
    with pytest.raises(Exception, match="does not list"):
        keys.key("rotated")  # unknown kid within the minimum refetch interval: no fetch
    assert len(fetches) == 1
    now[0] = 400.0
    keys.key("rsa-1")
    assert len(fetches) == 2  # past the TTL


def test_an_issuer_that_is_down_is_asked_at_most_once_per_interval(tmp_path: Path) -> None:
    """While the JWKS URL fails and no key was ever fetched, a flood of made-up tokens is not a
    flood of fetches: the attempt counts for the refetch interval."""
    import httpx

    now, fetches = [0.0], []

    def fetch(url: str) -> bytes:
        fetches.append(url)
        raise httpx.ConnectError("down")

    keys = Jwks("https://idp.example/jwks", monotonic=lambda: now[0], fetch=fetch)
    for _ in range(50):
        with pytest.raises(Exception, match="cannot be fetched now"):
            keys.key("rsa-1")
    assert len(fetches) == 1
    now[0] = 31.0
    with pytest.raises(Exception, match="cannot be fetched now"):
        keys.key("rsa-1")
    assert len(fetches) == 2


def test_serve_stops_at_start_on_a_bad_jwks_file_before_opening_the_database(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from second_opinion.bootstrap import build_app

    for name, value in env(tmp_path / "absent.json").items():
        monkeypatch.setenv(name, value)
    db = tmp_path / "never.sqlite3"
    with pytest.raises(ConfigurationError, match="SECOND_OPINION_OIDC_JWKS: cannot read the JWKS file"):
        build_app(f"sqlite:///{db}")
    assert not db.exists()
