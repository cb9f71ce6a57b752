"""A config is checked whole: every problem reported at once, naming its key."""

from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grapevine.toml"
    path.write_text(text)
    return path


def test_defaults_give_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, f'[bot]\ndata_dir = "{tmp_path}"\n'))
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/grapevine.db"
    assert settings.bot.tz.key == "Europe/London"


def test_every_problem_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[matrix]
homeserver = "matrix.example.org"
user_id = "grapevine"
[storage]
url = "mysql://x"
[roles]
admins = ["bob"]
[bot]
timezone = "Mars/Olympus"
colour = "blue"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = caught.value.problems
    keys = sorted(p.split(":", 1)[0] for p in problems)
    assert keys == [
        "bot.colour",
        "bot.timezone",
        "matrix.homeserver",
        "matrix.user_id",
        "roles",
        "storage.url",
    ]
    assert all("\n" not in p for p in problems)


def test_environment_supplies_secrets_and_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPEVINE_MATRIX__PASSWORD", "s3cret")
    monkeypatch.setenv("GRAPEVINE_PRIVACY__PSEUDONYM_SECRET", "pepper")
    monkeypatch.setenv("GRAPEVINE_WEB__LISTEN", "0.0.0.0:9000")
    settings = load_settings(write(tmp_path, '[web]\nlisten = "127.0.0.1:1"\n'))
    settings.require_runtime_secrets()
    assert settings.matrix.password is not None
    assert settings.matrix.password.get_secret_value() == "s3cret"
    assert settings.web.listen == "0.0.0.0:9000"


def test_missing_secrets_name_the_keys(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    with pytest.raises(ConfigError) as caught:
        settings.require_runtime_secrets()
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "matrix.password",
        "privacy.pseudonym_secret",
    ]


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "[bot\nprefix='!'"))
    assert len(caught.value.problems) == 1
    assert "not valid TOML" in caught.value.problems[0]


def test_the_shipped_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.areas import AreaIndex

    monkeypatch.setenv("GRAPEVINE_MATRIX__PASSWORD", "x")
    monkeypatch.setenv("GRAPEVINE_PRIVACY__PSEUDONYM_SECRET", "y")
    example = Path(__file__).resolve().parents[2] / "config" / "grapevine.toml"
    settings = load_settings(example)
    settings.require_runtime_secrets()
    areas = AreaIndex.load(settings.areas.file)
    for area in settings.roles.moderators:
        assert len(areas.resolve(area)) == 1, area


def test_autojoin_servers_add_to_the_bot_s_own_server(tmp_path: Path) -> None:
    own = load_settings(None, matrix={"user_id": "@gv:council.example"})
    assert own.matrix.allowed_invite_servers == ["council.example"]
    more = load_settings(None, matrix={"user_id": "@gv:council.example",
                                       "autojoin_servers": ["parish.example", "council.example"]})
    assert more.matrix.allowed_invite_servers == ["council.example", "parish.example"]
