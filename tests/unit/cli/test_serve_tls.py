"""``ferrous serve``'s TLS settings: both files or neither, and TLS 1.2 at least."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from ferrous.cli.main import app
from ferrous.cli.server_process import _web_config, tls_files
from ferrous.domain.errors import ConfigInvalid
from ferrous.infrastructure.settings import load_settings
from tests.e2e.test_tls import self_signed


def test_the_context_refuses_anything_older_than_tls_1_2(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    config = _web_config(uvicorn, FastAPI(), "127.0.0.1", 0, (str(cert_file), str(key_file)))
    assert isinstance(config.ssl, ssl.SSLContext)
    assert config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config.proxy_headers is False  # the API alone decides whom to believe
    plain = _web_config(uvicorn, FastAPI(), "127.0.0.1", 0, None)
    assert plain.ssl is None
    assert plain.proxy_headers is False


def test_both_files_or_neither(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    assert tls_files(load_settings({})) is None
    both = load_settings({"FERROUS_TLS_CERT": str(cert_file), "FERROUS_TLS_KEY": str(key_file)})
    assert tls_files(both) == (str(cert_file), str(key_file))
    with pytest.raises(ConfigInvalid, match="both a certificate and its key"):
        tls_files(load_settings({}, tls_cert=cert_file))
    with pytest.raises(ConfigInvalid, match="is not a readable file"):
        tls_files(load_settings({}, tls_cert=cert_file, tls_key=tmp_path / "missing.pem"))


def test_serve_says_what_is_wrong(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--data-dir", str(tmp_path), "--tls-cert", str(tmp_path / "c.pem")]
    )
    assert result.exit_code == 1
    assert "TLS needs both a certificate and its key" in result.stderr
