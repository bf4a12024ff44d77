"""slakit.lab.tls: the lab CA and server certificates are made once, kept while good, and made
again when missing, near expiry, naming other SANs, or not signed by the current CA. The
clock is faked (the `now` argument); the certificates are real and verified with OpenSSL."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess

import pytest
from cryptography import x509

from slakit.lab.tls import RENEW_DAYS, SERVER_DAYS, ensure_tls, server_names

HOSTS = {"lb-1": "172.28.50.10"}
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_first_run_makes_ca_and_server_cert(tmp_path):
    written = ensure_tls(HOSTS, tmp_path, NOW)
    assert sorted(written) == ["ca.crt", "ca.key", "lb-1.crt", "lb-1.key"]
    for key in ("ca.key", "lb-1.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    assert server_names(cert(tmp_path / "lb-1.crt")) == {"lb-1", "172.28.50.10"}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_chain_verifies_for_the_host_name_and_address(tmp_path):
    ensure_tls(HOSTS, tmp_path)  # the real clock: openssl verifies against it
    for check in (["-verify_hostname", "lb-1"], ["-verify_ip", "172.28.50.10"]):
        run = subprocess.run(
            ["openssl", "verify", "-CAfile", tmp_path / "ca.crt", *check, tmp_path / "lb-1.crt"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    other_ip = ["-verify_ip", "10.0.0.1", tmp_path / "lb-1.crt"]
    bad = subprocess.run(
        ["openssl", "verify", "-CAfile", tmp_path / "ca.crt", *other_ip],
        capture_output=True,
        check=False,
    )
    assert bad.returncode != 0


def test_second_run_keeps_everything(tmp_path):
    ensure_tls(HOSTS, tmp_path, NOW)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert ensure_tls(HOSTS, tmp_path, NOW + dt.timedelta(days=100)) == []
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_server_cert_renewed_within_renew_days_of_expiry(tmp_path):
    ensure_tls(HOSTS, tmp_path, NOW)
    late = NOW + dt.timedelta(days=SERVER_DAYS - RENEW_DAYS + 1)
    assert sorted(ensure_tls(HOSTS, tmp_path, late)) == ["lb-1.crt", "lb-1.key"]
    assert cert(tmp_path / "lb-1.crt").not_valid_after_utc > late + dt.timedelta(days=300)


def test_changed_address_remakes_the_server_cert(tmp_path):
    ensure_tls(HOSTS, tmp_path, NOW)
    assert sorted(ensure_tls({"lb-1": "172.28.50.11"}, tmp_path, NOW)) == ["lb-1.crt", "lb-1.key"]
    assert server_names(cert(tmp_path / "lb-1.crt")) == {"lb-1", "172.28.50.11"}


def test_missing_or_broken_files_are_remade(tmp_path):
    ensure_tls(HOSTS, tmp_path, NOW)
    (tmp_path / "lb-1.key").unlink()
    assert sorted(ensure_tls(HOSTS, tmp_path, NOW)) == ["lb-1.crt", "lb-1.key"]
    (tmp_path / "lb-1.crt").write_text("not a certificate")
    assert sorted(ensure_tls(HOSTS, tmp_path, NOW)) == ["lb-1.crt", "lb-1.key"]


def test_new_ca_reissues_every_server_cert(tmp_path):
    ensure_tls({**HOSTS, "lb-2": "172.28.50.12"}, tmp_path, NOW)
    (tmp_path / "ca.key").unlink()
    written = ensure_tls({**HOSTS, "lb-2": "172.28.50.12"}, tmp_path, NOW)
    assert sorted(written) == ["ca.crt", "ca.key", "lb-1.crt", "lb-1.key", "lb-2.crt", "lb-2.key"]
    ca = cert(tmp_path / "ca.crt")
    for host in ("lb-1", "lb-2"):
        cert(tmp_path / f"{host}.crt").verify_directly_issued_by(ca)
