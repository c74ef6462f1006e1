"""The platform's PostgreSQL settings: what a server still needs, and whether it must restart
(shared.postgres_tuning). 数据库调优设置：尚需修改的项与是否需要重启。"""

from __future__ import annotations

from shared.postgres_tuning import WRITE_TUNED, ServerSetting, changes, server_flags

WANTED = {"shared_buffers": "1GB", "max_wal_size": "4GB", "wal_compression": "lz4"}


def _server(**shown: str) -> list[ServerSetting]:
    contexts = {"shared_buffers": "postmaster", "max_wal_size": "sighup", "wal_compression": "superuser"}
    allowed = {"wal_compression": ("pglz", "lz4", "on", "off")}
    return [ServerSetting(name, value, contexts[name], allowed.get(name, ())) for name, value in shown.items()]


def test_a_server_on_defaults_needs_every_setting_and_a_restart() -> None:
    wanted = changes(_server(shared_buffers="128MB", max_wal_size="1GB", wal_compression="off"), WANTED)
    assert wanted.values == WANTED
    assert wanted.restart


def test_a_server_already_tuned_needs_nothing() -> None:
    wanted = changes(_server(**WANTED), WANTED)
    assert (dict(wanted.values), wanted.restart) == ({}, False)


def test_settings_that_take_effect_on_reload_need_no_restart() -> None:
    wanted = changes(_server(shared_buffers="1GB", max_wal_size="1GB", wal_compression="off"), WANTED)
    assert wanted.values == {"max_wal_size": "4GB", "wal_compression": "lz4"}
    assert not wanted.restart


def test_a_value_the_server_does_not_offer_is_left_alone() -> None:
    """pgserver's PostgreSQL is built without lz4: its wal_compression stays as it is."""
    server = [ServerSetting("wal_compression", "off", "superuser", ("pglz", "on", "off"))]
    assert dict(changes(server, WANTED).values) == {}


def test_a_setting_the_server_does_not_know_is_left_out() -> None:
    assert dict(changes(_server(shared_buffers="128MB"), WANTED).values) == {"shared_buffers": "1GB"}


def test_server_flags_are_one_dash_c_per_setting_in_order() -> None:
    assert server_flags(WANTED) == ["-c", "shared_buffers=1GB", "-c", "max_wal_size=4GB", "-c", "wal_compression=lz4"]
    assert len(server_flags()) == 2 * len(WRITE_TUNED)
