"""[storage] url and [ocpp] sessions_url: from config or environment, checked, never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.settings import HubSettings
from hub.store import is_database_url

URL = "postgresql://hub:s3cret@db.internal/lockerhub"


def test_sqlite_is_the_default() -> None:
    s = HubSettings.load(None, env={})
    assert s.storage.url == ""
    assert s.storage.target == Path("lockerhub-hub.db")
    assert not is_database_url(s.storage.target)


def test_url_from_the_environment_and_never_in_repr() -> None:
    s = HubSettings.load(
        None,
        env={
            "LOCKERHUB_HUB_STORAGE__URL": URL,
            "LOCKERHUB_HUB_STORAGE__POOL_SIZE": "8",
            "LOCKERHUB_HUB_OCPP__SESSIONS_URL": URL,
        },
    )
    assert s.storage.target == URL
    assert is_database_url(s.storage.target)
    assert s.storage.pool_size == 8
    assert s.ocpp.sessions_url == URL
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"LOCKERHUB_HUB_STORAGE__URL": "mysql://x/y"}, "storage.url"),
        ({"LOCKERHUB_HUB_STORAGE__URL": "/var/lib/hub.db"}, "storage.url"),
        ({"LOCKERHUB_HUB_STORAGE__URL": "postgresql:/" + "x" * 100_000}, "storage.url"),
        ({"LOCKERHUB_HUB_STORAGE__POOL_SIZE": "0"}, "storage.pool_size"),
        ({"LOCKERHUB_HUB_STORAGE__POOL_SIZE": "1000"}, "storage.pool_size"),
        ({"LOCKERHUB_HUB_OCPP__SESSIONS_URL": "sqlite:///x"}, "ocpp.sessions_url"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        HubSettings.load(None, env=env)
    assert "s3cret" not in str(err.value)
