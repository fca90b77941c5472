"""On Heroku (DYNO set) database connections require TLS; locally they do not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.config import load_settings
from app.db import make_engine
from app.migrations.history import PROJECT_ROOT
from devtools.docker import docker, published_port, unique, wait_for_postgres
from devtools.project import postgres_image
from tests.support.docker import require_docker

pytestmark = pytest.mark.docker

ENTRYPOINT_WITH_TLS = (
    "cp /certs/server.crt /certs/server.key /var/lib/postgresql/"
    " && chown postgres:postgres /var/lib/postgresql/server.crt /var/lib/postgresql/server.key"
    " && chmod 600 /var/lib/postgresql/server.key"
    " && exec docker-entrypoint.sh postgres -c ssl=on"
    " -c ssl_cert_file=/var/lib/postgresql/server.crt -c ssl_key_file=/var/lib/postgresql/server.key"
)


def self_signed_certificate(directory: Path) -> Path:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(directory / "server.key"), "-out", str(directory / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("server.key", "server.crt"):
        (directory / name).chmod(0o644)  # readable by the container's root, which copies it
    return directory


def start_postgres(tls: bool, certs: Path | None = None) -> tuple[str, str]:
    name = unique("ttls" if tls else "tplain")
    args = ["run", "-d", "--name", name, "-p", "127.0.0.1::5432"]
    args += ["-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=secret", "-e", "POSTGRES_DB=app"]
    if tls:
        args += ["-v", f"{certs}:/certs:ro", "--entrypoint", "sh", postgres_image(), "-c", ENTRYPOINT_WITH_TLS]
    else:
        args += [postgres_image()]
    docker(*args)
    url = f"postgres://app:secret@127.0.0.1:{published_port(name, 5432)}/app"
    wait_for_postgres(name)
    return name, url


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    require_docker()
    if subprocess.run(["sh", "-c", "command -v openssl"], capture_output=True).returncode != 0:
        pytest.fail("openssl is needed to make the test certificate (apt-get install openssl)")
    certs = self_signed_certificate(tmp_path_factory.mktemp("certs"))
    names = []
    try:
        tls_name, tls_url = start_postgres(True, certs)
        names.append(tls_name)
        plain_name, plain_url = start_postgres(False)
        names.append(plain_name)
        yield {"tls": tls_url, "plain": plain_url}
    finally:
        for name in names:
            docker("rm", "-f", "-v", name, check=False)


def connection_uses_tls(url: str, **env: str) -> bool:
    settings = load_settings({"DATABASE_URL": url, "SECRET_KEY": "s", **env})
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar_one()
    finally:
        engine.dispose()


def test_on_heroku_the_app_connects_with_tls(servers):
    assert connection_uses_tls(servers["tls"], DYNO="web.1") is True


def test_on_heroku_a_server_without_tls_is_refused(servers):
    with pytest.raises(OperationalError, match="SSL"):
        connection_uses_tls(servers["plain"], DYNO="web.1")


def test_locally_no_tls_is_needed(servers):
    assert connection_uses_tls(servers["plain"]) is False


def release(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "DYNO"}
    return subprocess.run(
        [sys.executable, "-m", "app.migrations", "release"],
        cwd=PROJECT_ROOT,
        env={**base, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "RELEASE_DB_WAIT": "3", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_release_process_on_heroku_migrates_over_tls_and_refuses_plain(servers):
    ok = release(servers["tls"], DYNO="release.1")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = release(servers["plain"], DYNO="release.1")
    assert refused.returncode != 0
    assert "SSL" in refused.stderr
