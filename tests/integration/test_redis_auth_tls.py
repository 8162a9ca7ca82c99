"""Redis AUTH and TLS end to end: a real redis-server that requires a password and speaks only
TLS (certificates made by ``openssl`` for the test), with the gateway, a service worker and
``babelstack keys`` all connected through ``rediss://`` + ``BABEL_REDIS_PASSWORD``; and the
launcher's own Redis requiring the password it is given."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from services.launcher.redis_server import free_port, start_redis
from tests.support.gateway_process import GatewayProcess, start_gateway
from tests.support.processes import REPO_ROOT, WorkerProcess, start_worker, worker_env

PASSWORD = "s3cret-redis-password"
ADMIN_KEY = "bsk_tls-test-bootstrap-admin-key-0123456789abcdef"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> None:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
             cwd=directory)  # fmt: skip


@dataclass
class TlsRedis:
    process: subprocess.Popen[bytes]
    port: int
    ca_file: Path

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    directory = tmp_path_factory.mktemp("tls-redis")
    make_certificates(directory)
    port = free_port()
    config = directory / "redis.conf"
    config.write_text(
        f'requirepass "{PASSWORD}"\nport 0\ntls-port {port}\nbind 127.0.0.1\n'
        f"tls-cert-file {directory / 'server.pem'}\ntls-key-file {directory / 'server.key'}\n"
        f"tls-ca-cert-file {directory / 'ca.pem'}\ntls-auth-clients no\n"
        f'save ""\nappendonly no\ndir {directory}\n'
    )
    process = subprocess.Popen(
        ["redis-server", str(config)],
        stdout=(directory / "redis.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    server = TlsRedis(process=process, port=port, ca_file=directory / "ca.pem")
    client = redis.Redis.from_url(server.url, password=PASSWORD, ssl_ca_certs=str(server.ca_file))
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, (directory / "redis.log").read_text()
                time.sleep(0.05)
        yield server
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(
    tls_redis: TlsRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, WorkerProcess, dict[str, str]]]:
    log_dir = tmp_path_factory.mktemp("tls-stack")
    (log_dir / "admin.key").write_text(ADMIN_KEY)
    env = {"BABEL_REDIS_PASSWORD": PASSWORD, "BABEL_REDIS_TLS_CA_FILE": str(tls_redis.ca_file)}
    worker = start_worker(
        "tests.support.echo_worker", redis_url=tls_redis.url, log_dir=log_dir, name="echo", env=env
    )
    gateway = None
    try:
        gateway = start_gateway(
            redis_url=tls_redis.url,
            log_dir=log_dir,
            env={
                **env,
                "BABEL_AUTH": "on",
                "BABEL_ADMIN_KEY_FILE": str(log_dir / "admin.key"),
                "BABEL_GATEWAY_SERVICES": "echo",
            },
        )
        yield gateway, worker, worker_env(tls_redis.url, env)
    finally:
        if gateway is not None:
            gateway.stop()
        worker.stop(timeout_s=10)


def test_server_requires_tls_and_the_password(tls_redis: TlsRedis) -> None:
    plain = redis.Redis(host="127.0.0.1", port=tls_redis.port, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()
    anonymous = redis.Redis.from_url(tls_redis.url, ssl_ca_certs=str(tls_redis.ca_file))
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_gateway_worker_and_cli_over_tls_with_auth(
    stack: tuple[GatewayProcess, WorkerProcess, dict[str, str]],
) -> None:
    gateway, worker, env = stack
    made = subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", "keys", "create", "--name", "ops",
         "--scopes", "admin"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    with httpx.Client(base_url=gateway.base_url, timeout=30) as http:
        ready = http.get("/readyz").json()
        assert ready["redis"]["ok"] is True, ready
        for attempt in range(200):  # the echo worker's heartbeat arrives through TLS too
            ping = http.get("/v1/services/echo/ping", headers={"Authorization": f"Bearer {key}"})
            if ping.status_code == 200 or attempt == 199:
                break
            worker.assert_alive()
            time.sleep(0.1)
        assert ping.status_code == 200, ping.text
        assert ping.json()["service"] == "echo"
        listed = http.get("/v1/keys", headers={"X-API-Key": ADMIN_KEY}).json()
        assert [k["name"] for k in listed["keys"]] == ["ops"]


def test_launcher_redis_requires_its_password(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", password=PASSWORD)
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port).ping()
        assert redis.Redis(host="127.0.0.1", port=server.port, password=PASSWORD).ping()
        assert PASSWORD not in " ".join(server.process.args)  # type: ignore[arg-type]
    finally:
        server.stop()
