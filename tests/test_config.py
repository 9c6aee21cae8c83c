"""Configuration errors are caught at start-up, naming what is wrong and never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.config import load_settings
from gateway.edge.app import create_app
from gateway.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "propgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_configuration_means_the_sandbox() -> None:
    assert load_settings(None).uses_sandbox


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "[gateway]\nmax_page_sise = 50\n")
    with pytest.raises(ConfigError, match="gateway.max_page_sise"):
        load_settings(path)


def test_secrets_cannot_be_written_in_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[providers.primmo]\nurl = "https://primmo.example"\npassword = "hunter2"\n',
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert "providers.primmo.password" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_missing_environment_secret_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRIMMO_PASSWORD", raising=False)
    monkeypatch.setenv("PRIMMO_API_KEY", "key")
    path = _write(
        tmp_path,
        '[providers.primmo]\nurl = "https://primmo.example"\nusername = "me"\n'
        'api_key = { env = "PRIMMO_API_KEY" }\npassword = { env = "PRIMMO_PASSWORD" }\n',
    )
    with pytest.raises(ConfigError, match="PRIMMO_PASSWORD"):
        create_app(load_settings(path))


def test_real_providers_replace_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIMMO_API_KEY", "key")
    monkeypatch.setenv("PRIMMO_PASSWORD", "secret")
    path = _write(
        tmp_path,
        '[defaults]\ntimeout_seconds = 5\n[providers.primmo]\nurl = "https://primmo.example"\n'
        'username = "me"\napi_key = { env = "PRIMMO_API_KEY" }\n'
        'password = { env = "PRIMMO_PASSWORD" }\nmax_connections = 8\n',
    )
    app = create_app(load_settings(path))

    assert app.state.gateway.sandbox is None
    (upstream,) = app.state.gateway.upstreams
    assert upstream.base_url == "https://primmo.example"
    assert (upstream.traffic.timeout_seconds, upstream.traffic.max_connections) == (5, 8)
    assert not any(getattr(route, "path", "").startswith("/sandbox") for route in app.routes)


def test_an_unknown_provider_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '[providers.acme]\nurl = "https://acme.example"\n')
    with pytest.raises(ConfigError, match="acme"):
        create_app(load_settings(path))


def test_an_unknown_provider_option_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOM_TOKEN", "token")
    monkeypatch.setenv("PROPGATE_VAULT_KEY", Fernet.generate_key().decode())
    path = _write(
        tmp_path,
        '[providers.scom]\nurl = "https://scom.example"\napi_token = { env = "SCOM_TOKEN" }\n'
        f'[vault]\npath = "{tmp_path / "vault.sqlite3"}"\n'
        "[providers.scom.options]\nauto_activat = false\n",
    )
    with pytest.raises(ConfigError, match=r"providers\.scom\.options.*auto_activat"):
        create_app(load_settings(path))


@pytest.mark.parametrize(
    "option",
    [
        'token_url = "/auth/oauth/v1/token"',
        'token_request = "xml"',
        'token_uri = "https://a.example"',
    ],
)
def test_mycrm_token_options_are_checked_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    monkeypatch.setenv("MYCRM_KEY", "key")
    monkeypatch.setenv("MYCRM_SECRET", "secret")
    path = _write(
        tmp_path,
        '[providers.mycrm]\nurl = "https://api.mycrm.example"\n'
        'api_key = { env = "MYCRM_KEY" }\napi_secret = { env = "MYCRM_SECRET" }\n'
        f"[providers.mycrm.options]\n{option}\n",
    )
    with pytest.raises(ConfigError, match=rf"providers\.mycrm\.options.*{option.split()[0]}"):
        create_app(load_settings(path))


def test_the_redis_url_comes_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROPGATE_REDIS_URL", raising=False)
    monkeypatch.setenv("E2E_REDIS_URL", "redis://:s3cret@cache.internal:6379/2")
    plain = load_settings(_write(tmp_path, '[gateway]\nredis_url = "redis://cache:6379/1"\n'))
    secret = load_settings(_write(tmp_path, '[gateway]\nredis_url = { env = "E2E_REDIS_URL" }\n'))
    assert plain.gateway.redis() == "redis://cache:6379/1"
    assert secret.gateway.redis() == "redis://:s3cret@cache.internal:6379/2"
    assert load_settings(None).gateway.redis() is None

    monkeypatch.setenv("PROPGATE_REDIS_URL", "redis://elsewhere:6379/0")
    assert (
        plain.gateway.redis() == load_settings(None).gateway.redis() == "redis://elsewhere:6379/0"
    )


def test_a_redis_password_cannot_be_written_in_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[gateway]\nredis_url = "redis://:hunter2@cache:6379/0"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert "redis_url" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_sandbox_whose_unit_range_is_empty_is_refused_by_name(tmp_path: Path) -> None:
    """Once a traceback from the generator's randrange; now the configuration's own error."""
    path = _write(tmp_path, "[sandbox]\nmin_units_per_building = 5\nmax_units_per_building = 2\n")

    with pytest.raises(ConfigError, match="min_units_per_building is more than max"):
        load_settings(path)
