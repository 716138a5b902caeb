"""Typed configuration, read from TOML with secrets optionally taken from the environment.

Every leaf key ``a.b.c`` may be overridden by the variable ``UNIONBOT_A_B_C``, so secrets need
not live in the file. A wrong or missing value raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "UNIONBOT_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = PROJECT_ROOT / "config.example.toml"


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 65536


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///var/unionbot.db"
    pool_size: int = 10
    echo: bool = False
    migrate_on_start: bool = False


@dataclass(frozen=True)
class BotConfig:
    name: str = "工会小助手"
    handler_budget_seconds: float = 4.0
    timestamp_window_seconds: int = 300
    content_dirs: tuple[str, ...] = ("content",)


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    format: str = "json"


@dataclass(frozen=True)
class DevConfig:
    enabled: bool = False
    path: str = "/dev/chat"
    secret: str = ""


@dataclass(frozen=True)
class MPConfig:
    enabled: bool = False
    path: str = "/wechat/mp"
    app_id: str = ""
    app_secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://api.weixin.qq.com"


@dataclass(frozen=True)
class WorkConfig:
    enabled: bool = False
    path: str = "/wechat/work"
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"


@dataclass(frozen=True)
class AIBotConfig:
    enabled: bool = False
    path: str = "/wechat/aibot"
    token: str = ""
    encoding_aes_key: str = ""


@dataclass(frozen=True)
class RobotConfig:
    api_base: str = "https://qyapi.weixin.qq.com"
    keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WeChatConfig:
    mp: MPConfig = field(default_factory=MPConfig)
    work: WorkConfig = field(default_factory=WorkConfig)
    aibot: AIBotConfig = field(default_factory=AIBotConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)


@dataclass(frozen=True)
class OutboxConfig:
    enabled: bool = True
    poll_seconds: float = 1.0
    max_attempts: int = 8
    backoff_seconds: float = 2.0
    http_timeout_seconds: float = 5.0
    # Sends allowed per window, "COUNT/SECONDS", by API: robot (per robot), work_app,
    # appchat, mp_cs. Unnamed APIs keep the defaults in bot/outbound/ratelimit.py.
    rate_limits: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for api, rate in self.rate_limits.items():
            count, _, seconds = rate.partition("/")
            try:
                ok = int(count) > 0 and float(seconds) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(
                    f"outbox.rate_limits.{api}: expected COUNT/SECONDS such as 20/60, got {rate!r}"
                )


@dataclass(frozen=True)
class FormsConfig:
    """Chat forms (购药登记, 服务申请, 入会申请, 法律援助申请)."""

    notify_robot: str = "volunteers"  # robot name in [wechat.robot.keys] that gets the cards
    reminder_minutes: int = 30  # a form left alone gets a reminder after this long
    expire_minutes: int = 240  # … and is dropped after this long
    digest_time: str = "20:00"  # daily digest of submissions, Asia/Shanghai

    def __post_init__(self) -> None:
        hours, _, minutes = self.digest_time.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2) or not (
            int(hours) < 24 and int(minutes) < 60
        ):
            raise ConfigError(f"forms.digest_time: expected HH:MM, got {self.digest_time!r}")
        if self.reminder_minutes < 1:
            raise ConfigError("forms.reminder_minutes: must be at least 1")
        if self.expire_minutes <= self.reminder_minutes:
            raise ConfigError("forms.expire_minutes: must be longer than forms.reminder_minutes")


@dataclass(frozen=True)
class CasesConfig:
    """Cases forwarded to cadres; the roster and calendar are content files."""

    group_robot: str = "cadres"  # robot name in [wechat.robot.keys] for case cards
    check_minutes: int = 10  # how often overdue cases are looked for
    reply_template_id: str = ""  # OA template for answers outside the 48-hour window


@dataclass(frozen=True)
class BroadcastsConfig:
    """Scheduled pushes (definitions in content/broadcasts/*.toml)."""

    enabled: bool = True  # run the scheduler in this instance
    timezone: str = "Asia/Shanghai"
    grace_minutes: int = 60  # a firing missed while down is sent on start if this recent
    topics: tuple[str, ...] = ("直播", "夜校", "送清凉", "活动通知")  # 订阅 / 退订 these
    check_seconds: float = 30.0  # besides the cron jobs, look for due firings this often
    # WeCom drops an app message identical to one sent to the same member this recently, so a
    # push resent after a crash is not shown twice (at most 4 hours: WeCom's own limit).
    duplicate_check_minutes: int = 240

    def __post_init__(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"broadcasts.timezone: unknown time zone {self.timezone!r}") from None
        if self.grace_minutes < 0:
            raise ConfigError("broadcasts.grace_minutes: must not be negative")
        if self.check_seconds <= 0:
            raise ConfigError("broadcasts.check_seconds: must be positive")
        if not 0 <= self.duplicate_check_minutes <= 240:
            raise ConfigError("broadcasts.duplicate_check_minutes: must be between 0 and 240")
        if any(not t.strip() or len(t) > 32 for t in self.topics):
            raise ConfigError("broadcasts.topics: each topic must be 1 to 32 characters")


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    log: LogConfig = field(default_factory=LogConfig)
    dev: DevConfig = field(default_factory=DevConfig)
    wechat: WeChatConfig = field(default_factory=WeChatConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    forms: FormsConfig = field(default_factory=FormsConfig)
    cases: CasesConfig = field(default_factory=CasesConfig)
    broadcasts: BroadcastsConfig = field(default_factory=BroadcastsConfig)
    # Folder of the config file: relative paths (SQLite file, content) resolve against it.
    base_dir: Path = field(default=PROJECT_ROOT, compare=False)

    def content_paths(self) -> list[Path]:
        return [resolve_path(self.base_dir, p) for p in self.bot.content_dirs]


def resolve_path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def find_config_file(explicit: str | None = None) -> Path:
    """``--config``, then ``UNIONBOT_CONFIG``, then ./config.toml, then the example."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("UNIONBOT_CONFIG")
    if env:
        return Path(env)
    local = Path("config.toml")
    if local.exists():
        return local
    return EXAMPLE_CONFIG


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    file = find_config_file(str(path) if path else None)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    return config_from_dict(raw, base_dir=file.resolve().parent, env=env)


def config_from_dict(
    raw: Mapping[str, Any], base_dir: Path = PROJECT_ROOT, env: Mapping[str, str] | None = None
) -> Config:
    environ = os.environ if env is None else env
    values: Config = _build(Config, raw, (), environ, skip={"base_dir"})
    config = dataclasses.replace(values, base_dir=base_dir)
    _validate(config)
    return config


def _build(
    cls: type[Any],
    raw: Any,
    path: tuple[str, ...],
    env: Mapping[str, str],
    skip: frozenset[str] | set[str] = frozenset(),
) -> Any:
    where = ".".join(path) or "(top level)"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{where}] must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = set(raw) - names
    if unknown:
        key = ".".join((*path, sorted(unknown)[0]))
        raise ConfigError(f"{key}: unknown key (check the spelling against config.example.toml)")
    kwargs: dict[str, Any] = {}
    for name in names:
        hint = hints[name]
        key_path = (*path, name)
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(typing.cast(type[Any], hint), raw.get(name, {}), key_path, env)
            continue
        env_name = ENV_PREFIX + "_".join(key_path).upper()
        if env_name in env:
            kwargs[name] = _coerce_env(env[env_name], hint, ".".join(key_path))
        elif name in raw:
            kwargs[name] = _check_type(raw[name], hint, ".".join(key_path))
    return cls(**kwargs)


def _coerce_env(text: str, hint: Any, key: str) -> Any:
    if hint is bool:
        if text.lower() in {"1", "true", "yes", "on"}:
            return True
        if text.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}: expected true or false, got {text!r}")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key}: expected a whole number, got {text!r}") from None
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {text!r}") from None
    if hint is str:
        return text
    raise ConfigError(f"{key}: cannot be set from the environment")


_TYPE_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def _check_type(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _TYPE_WORDS:
        if type(value) is not hint:
            raise ConfigError(f"{key}: expected {_TYPE_WORDS[hint]}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    if origin in (Mapping, dict) or origin is types.MappingProxyType:
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{key}: expected a table of strings")
        return dict(value)
    raise ConfigError(f"{key}: unsupported type")  # pragma: no cover - a programming error


def _validate(config: Config) -> None:
    def need(cond: bool, key: str, what: str) -> None:
        if not cond:
            raise ConfigError(f"{key}: {what}")

    need(0 < config.server.port < 65536, "server.port", "must be between 1 and 65535")
    need(config.server.max_body_bytes >= 1024, "server.max_body_bytes", "must be at least 1024")
    need(
        config.database.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
        "database.url",
        "must start with sqlite+aiosqlite:// or postgresql+asyncpg://",
    )
    need(config.bot.handler_budget_seconds > 0, "bot.handler_budget_seconds", "must be positive")
    need(
        config.bot.timestamp_window_seconds > 0, "bot.timestamp_window_seconds", "must be positive"
    )
    need(
        config.log.level.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"},
        "log.level",
        "must be DEBUG, INFO, WARNING or ERROR",
    )
    need(config.log.format in {"json", "text"}, "log.format", "must be json or text")
    need(config.dev.path.startswith("/"), "dev.path", "must start with /")
    mp, work, aibot = config.wechat.mp, config.wechat.work, config.wechat.aibot
    if mp.enabled:
        need(bool(mp.token), "wechat.mp.token", "is required when wechat.mp.enabled is true")
        need(mp.path.startswith("/"), "wechat.mp.path", "must start with /")
        _check_aes_key(mp.encoding_aes_key, "wechat.mp.encoding_aes_key", required=False)
        if mp.encoding_aes_key:
            need(bool(mp.app_id), "wechat.mp.app_id", "is required for safe (AES) mode")
    if work.enabled:
        need(bool(work.token), "wechat.work.token", "is required when wechat.work.enabled is true")
        need(
            bool(work.corp_id),
            "wechat.work.corp_id",
            "is required when wechat.work.enabled is true",
        )
        _check_aes_key(work.encoding_aes_key, "wechat.work.encoding_aes_key", required=True)
    if aibot.enabled:
        need(
            bool(aibot.token), "wechat.aibot.token", "is required when wechat.aibot.enabled is true"
        )
        _check_aes_key(aibot.encoding_aes_key, "wechat.aibot.encoding_aes_key", required=True)
    need(config.outbox.max_attempts >= 1, "outbox.max_attempts", "must be at least 1")


def _check_aes_key(value: str, key: str, required: bool) -> None:
    if not value:
        if required:
            raise ConfigError(f"{key}: is required (43 characters from the WeChat console)")
        return
    import base64
    import binascii

    try:
        raw = base64.b64decode(value + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{key}: is not a valid EncodingAESKey (43 base64 characters)") from None
    if len(value) != 43 or len(raw) != 32:
        raise ConfigError(f"{key}: must be 43 characters long (it is {len(value)})")
