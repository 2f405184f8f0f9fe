"""Redis password and TLS from CacheConfig: right credentials give cache hits, wrong or missing ones fail open
(served, ``cache_hit`` false) with the reason logged and the password never shown (issue 13, security)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from graphrec_ray.serving.cache import PASSWORD_ENV, EmbeddingCache, make_redis_client, redis_connection_args
from graphrec_ray.serving.config import CacheConfig, ServeConfig
from tests.net import free_port

from .planted import RANKER, USER_RAW, make_run_dir

PASSWORD = "correct-horse-battery-staple"
CACHE_LOGGER = "graphrec_ray.serving.cache"


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start(args: list[str], port: int, workdir: Path) -> subprocess.Popen:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed: cannot start a private Redis with a password")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10.0
    while not _answers(int(args[args.index("--tls-port") + 1]) if "--tls-port" in args else port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip("could not start a private redis-server")
        time.sleep(0.05)
    return proc


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a private ``redis-server --requirepass`` (no password in the URL)."""
    port = free_port()
    proc = _start(["--requirepass", PASSWORD], port, tmp_path_factory.mktemp("redis-auth"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def _no_env_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


def _lookup_twice(cfg: CacheConfig) -> tuple[np.ndarray, np.ndarray, EmbeddingCache]:
    """Two lookups of the same users (the first writes back on a miss); returns both hit masks."""
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    cache = EmbeddingCache.from_config(cfg)
    users = np.array([1, 4, 7])
    emb1, hit1 = cache.get_many("v-auth", users, table)
    emb2, hit2 = cache.get_many("v-auth", users, table)
    np.testing.assert_array_equal(emb1, table[users])  # served either way (fails open)
    np.testing.assert_array_equal(emb2, table[users])
    return hit1, hit2, cache


def test_right_password_from_config_or_env_gives_hits(auth_redis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (issue 13): a Redis with a password could only be reached by writing it into the URL."""
    hit1, hit2, cache = _lookup_twice(CacheConfig(url=auth_redis, password=PASSWORD, key_prefix="cfgpw"))
    assert not hit1.any() and hit2.all() and cache.stats.errors == 0
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    hit1, hit2, cache = _lookup_twice(CacheConfig(url=auth_redis, key_prefix="envpw"))
    assert not hit1.any() and hit2.all() and cache.stats.errors == 0


@pytest.mark.parametrize("password,reason", [("wrong", "AuthenticationError"), ("", "Authentication")])
def test_wrong_or_missing_password_fails_open_with_a_logged_reason(auth_redis: str, password: str, reason: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=CACHE_LOGGER)
    hit1, hit2, cache = _lookup_twice(CacheConfig(url=auth_redis, password=password, key_prefix="bad"))
    assert not hit1.any() and not hit2.any() and cache.stats.errors >= 2
    logged = [r.getMessage() for r in caplog.records if r.name == CACHE_LOGGER]
    assert len(logged) == 1, logged  # once per outage and reason, not once per request
    assert "serving from the in-process table" in logged[0] and reason in logged[0]
    assert PASSWORD not in caplog.text and (not password or password not in caplog.text)


def test_served_request_fails_open_on_a_wrong_password(auth_redis: str, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Through the whole request path: the answer is 200 with cache_hit false, then true with the right password."""
    from serve_app.collocated import Recommender

    caplog.set_level(logging.WARNING, logger=CACHE_LOGGER)
    run = make_run_dir(tmp_path / "v1")
    user = str(int(USER_RAW(3)))
    base = ServeConfig(ranker_loader=RANKER, cache=CacheConfig(url=auth_redis, password="wrong", key_prefix="req"))
    wrong = Recommender(base, str(run.run_dir))
    bodies = [asyncio.run(wrong.recommend(user, "5")) for _ in range(2)]
    assert all(isinstance(b, dict) and len(b["items"]) == 5 and b["cache_hit"] is False for b in bodies)
    assert "AuthenticationError" in caplog.text and "wrong" not in caplog.text.replace("wrong password", "")
    right = Recommender(dataclasses.replace(base, cache=dataclasses.replace(base.cache, password=PASSWORD)),
                        str(run.run_dir))
    first, second = (asyncio.run(right.recommend(user, "5")) for _ in range(2))
    assert first["cache_hit"] is False and second["cache_hit"] is True
    assert [i["item_id"] for i in second["items"]] == [i["item_id"] for i in bodies[0]["items"]]


def test_password_stays_out_of_the_config_repr() -> None:
    cfg = ServeConfig(cache=CacheConfig(url="redis://127.0.0.1:6379/0", password=PASSWORD))
    assert PASSWORD not in repr(cfg) and PASSWORD not in str(cfg.cache)


def test_tls_connection_arguments() -> None:
    import redis

    cfg = CacheConfig(url="redis://cache.internal:6380/2", tls=True, tls_ca_cert="/etc/graphrec/redis-ca.pem",
                      username="graphrec")
    url, kw = redis_connection_args(cfg, env={PASSWORD_ENV: "from-env"})
    assert url == "rediss://cache.internal:6380/2"
    assert kw["ssl_cert_reqs"] == "required" and kw["ssl_check_hostname"] is True
    assert kw["ssl_ca_certs"] == "/etc/graphrec/redis-ca.pem"
    assert kw["password"] == "from-env" and kw["username"] == "graphrec"
    pool = make_redis_client(cfg).connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/graphrec/redis-ca.pem"
    assert pool.connection_kwargs["db"] == 2
    plain_url, plain = redis_connection_args(CacheConfig(url="redis://h:1/0"), env={})
    assert plain_url == "redis://h:1/0" and not any(k.startswith("ssl") or k == "password" for k in plain)
    assert redis_connection_args(CacheConfig(url="rediss://h:1/0"), env={})[1]["ssl_cert_reqs"] == "required"
    with pytest.raises(ValueError, match="tls_ca_cert needs tls"):
        CacheConfig(url="redis://h:1/0", tls_ca_cert="/ca.pem")


def _self_signed(dirpath: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files): (ca, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graphrec test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = dirpath / "ca.pem", dirpath / "server.pem", dirpath / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_tls_server_with_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A private TLS-only redis-server (when this build has TLS): the configured CA verifies it and the
    password authenticates (hits); another CA's bundle fails open with the TLS reason logged."""
    ca, cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    args = ["--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no", "--requirepass", PASSWORD]
    proc = _start(args, 0, tmp_path)
    try:
        url = f"redis://127.0.0.1:{tls_port}/0"
        cfg = CacheConfig(url=url, tls=True, tls_ca_cert=str(ca), password=PASSWORD, key_prefix="tls",
                          connect_timeout_ms=500.0, socket_timeout_ms=500.0)
        hit1, hit2, cache = _lookup_twice(cfg)
        assert not hit1.any() and hit2.all() and cache.stats.errors == 0
        other = tmp_path / "other"
        other.mkdir()
        caplog.set_level(logging.WARNING, logger=CACHE_LOGGER)
        hit1, hit2, cache = _lookup_twice(dataclasses.replace(cfg, tls_ca_cert=str(_self_signed(other)[0])))
        assert not hit1.any() and not hit2.any() and cache.stats.errors >= 1
        assert "serving from the in-process table" in caplog.text and "certificate" in caplog.text.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
