"""Typed settings: a TOML file plus ``GRAPEVINE_*`` environment variables.

Secrets (passwords, tokens, the pseudonym secret) belong in the environment,
e.g. ``GRAPEVINE_MATRIX__PASSWORD``; everything else in the TOML file.
A bad config never starts the bot: :func:`load_settings` raises
:class:`ConfigError` listing every problem at once, one line each, naming the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

USER_ID_PATTERN = r"^@[^:\s]+:[^\s]+$"


class ConfigError(Exception):
    """Every problem with a config, one line each, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatrixSettings(_Section):
    homeserver: str = "http://127.0.0.1:8008"
    user_id: str = Field("@grapevine:localhost", pattern=USER_ID_PATTERN)
    password: SecretStr | None = None
    access_token: SecretStr | None = None
    device_name: str = "grapevine"
    # Invites are accepted from the bot's own server and from these (other councils').
    autojoin_servers: list[str] = Field(default_factory=list)
    encryption: bool = True
    # Seals the bot's cross-signing keys in data_dir (a long random secret, from the
    # environment); without it Element's "exclude insecure devices" hides the bot.
    cross_signing_key: SecretStr | None = None
    sync_timeout_ms: int = Field(30_000, ge=0, le=120_000)

    @field_validator("homeserver")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]

    @property
    def allowed_invite_servers(self) -> list[str]:
        """The bot's own server first, then the listed ones: listing a server never drops it."""
        return list(dict.fromkeys([self.server_name, *self.autojoin_servers]))


class StorageSettings(_Section):
    # None means SQLite in the data directory.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db"
            )
        return value


class RolesSettings(_Section):
    admins: list[str] = Field(default_factory=list)
    coordinators: list[str] = Field(default_factory=list)
    # area (GSS code or name) -> Matrix ids of its moderators
    moderators: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _user_ids(self) -> RolesSettings:
        import re

        moderators = [u for users in self.moderators.values() for u in users]
        everyone = [*self.admins, *self.coordinators, *moderators]
        bad = [u for u in everyone if not re.match(USER_ID_PATTERN, u)]
        if bad:
            raise ValueError(f"not Matrix ids (write them as @name:server): {', '.join(bad)}")
        return self


class AreasSettings(_Section):
    # None means the shipped Cambridgeshire file.
    file: Path | None = None


class PrivacySettings(_Section):
    retention_days: int = Field(180, ge=1, le=3650)
    pseudonym_secret: SecretStr | None = None
    # Key for mediation notes at rest (Fernet, urlsafe base64 of 32 bytes).
    notes_key: SecretStr | None = None
    notes_retention_days: int = Field(90, ge=0, le=3650)
    # Sent (or given-up) outbox rows: their text, files and the recipient's id go after
    # this many days; the rows themselves after ``outbox_keep_days`` (a row whose dedupe
    # key stops a second send stays as an empty stub, so nothing is ever sent twice).
    outbox_body_days: int = Field(7, ge=0, le=3650)
    outbox_keep_days: int = Field(30, ge=1, le=3650)

    @field_validator("outbox_keep_days")
    @classmethod
    def _rows_outlive_bodies(cls, value: int, info: ValidationInfo) -> int:
        body_days = info.data.get("outbox_body_days")
        if body_days is not None and value < body_days:
            raise ValueError(f"must be at least outbox_body_days ({body_days}): "
                             "a row keeps no text longer than the row itself")
        return value


class WebSettings(_Section):
    listen: str = "127.0.0.1:8080"
    base_url: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("write it as host:port, e.g. 127.0.0.1:8080")
        return value


class EmailSettings(_Section):
    """SMTP for the email digest to groups not on chat; no host means no digest is sent."""

    host: str | None = None
    port: int = Field(587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = "grapevine@localhost"
    starttls: bool = True


class BotSettings(_Section):
    prefix: str = Field("!", min_length=1, max_length=3)
    timezone: str = "Europe/London"
    data_dir: Path = Path("data")
    commands_per_minute: int = Field(10, ge=1)
    notices_per_day: int = Field(3, ge=0)
    requests_per_day: int = Field(3, ge=0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Europe/London"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Settings(BaseSettings):
    """The whole configuration; see config/grapevine.toml for an annotated example."""

    model_config = SettingsConfigDict(
        env_prefix="GRAPEVINE_", env_nested_delimiter="__", extra="forbid"
    )

    bot: BotSettings = Field(default_factory=BotSettings)  # type: ignore[arg-type]
    matrix: MatrixSettings = Field(default_factory=MatrixSettings)  # type: ignore[arg-type]
    storage: StorageSettings = Field(default_factory=StorageSettings)
    roles: RolesSettings = Field(default_factory=RolesSettings)
    areas: AreasSettings = Field(default_factory=AreasSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)  # type: ignore[arg-type]
    web: WebSettings = Field(default_factory=WebSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)  # type: ignore[arg-type]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file, so secrets never need to be in the TOML.
        return (env_settings, init_settings)

    @property
    def database_url(self) -> str:
        if self.storage.url:
            return self.storage.url
        return f"sqlite+aiosqlite:///{(self.bot.data_dir / 'grapevine.db').resolve()}"

    def require_runtime_secrets(self) -> None:
        """Checks that only matter for ``grapevine run`` (the demo makes its own)."""
        problems = []
        if self.matrix.password is None and self.matrix.access_token is None:
            problems.append(
                "matrix.password: set a password or matrix.access_token "
                "(e.g. GRAPEVINE_MATRIX__PASSWORD in the environment)"
            )
        if self.privacy.pseudonym_secret is None:
            problems.append(
                "privacy.pseudonym_secret: set a long random secret "
                "(GRAPEVINE_PRIVACY__PSEUDONYM_SECRET); it keys the HMAC of sender ids"
            )
        if problems:
            raise ConfigError(problems)

    def runtime_warnings(self) -> list[str]:
        """What ``grapevine run`` can live without but Element users will notice, one line each."""
        matrix = self.matrix
        if not matrix.encryption:
            return []
        warnings = []
        if matrix.cross_signing_key is None:
            warnings.append(
                "matrix.cross_signing_key: not set, so the bot's device is not cross-signed and "
                "Element clients that exclude insecure devices will not talk to it; set "
                "GRAPEVINE_MATRIX__CROSS_SIGNING_KEY to a long random secret"
            )
        elif matrix.password is None:
            warnings.append(
                "matrix.password: only an access token is set; if the homeserver already has "
                "other cross-signing keys for the bot, publishing its own needs the password "
                "once: start it with GRAPEVINE_MATRIX__PASSWORD set"
            )
        return warnings


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; check its spelling against config/grapevine.toml"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message}"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (TOML) and the environment; raise ConfigError listing every problem."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()]) from None  # type: ignore[arg-type]
