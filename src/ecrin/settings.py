"""Every setting, declared once in `Settings`: name, type, default, help. Env var
`ECRIN_<NAME>`.

Precedence (highest first): explicit overrides (CLI flags) > environment > config file
(TOML, `ecrin.toml` in the data directory or `--config`) > defaults. The configuration
reference in `docs/configuration.md` is generated from `SETTINGS` and a test keeps it true.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

from ecrin.core.errors import BadRequest

# Above this, a body would be held whole in memory before its commit for too little gain.
INLINE_MAX_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    secret: bool = False  # never printed by `ecrin config show`

    @property
    def env_var(self) -> str:
        return "ECRIN_" + self.name.upper()


def _coerce(setting: Setting, value: Any) -> Any:
    try:
        if setting.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return setting.type(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(
            f"setting {setting.name}: cannot read {value!r} as {setting.type.__name__}"
        ) from exc


def _setting(default: Any, help: str, *, secret: bool = False) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Every setting: its type, default and help, in one place."""

    data_dir: Path = _setting(
        Path("ecrin-data"),
        "Folder holding the SQLite database, blobs and the config file.",
    )
    host: str = _setting(
        "127.0.0.1",
        "Address to listen on.",
    )
    port: int = _setting(
        8080,
        "TCP port to listen on.",
    )
    workers: int = _setting(
        1,
        "Number of server processes on one host, each accepting connections on a socket of "
        "its own (the kernel spreads them); on SQLite they take turns to write. SIGHUP to "
        "`ecrin serve` then replaces them one by one, reading the config file again.",
    )
    database_url: str = _setting(
        "",
        "SQLAlchemy URL of the metadata database; empty means SQLite in the data dir.",
    )
    database_pool_size: int = _setting(
        10,
        "PostgreSQL connections each server process keeps open (as many again in bursts).",
    )
    storage_url: str = _setting(
        "",
        "Where file contents live: empty means `file://<data_dir>/blobs`; "
        "`s3://bucket/prefix?endpoint=URL&region=NAME` stores them in an S3 bucket.",
    )
    inline_max_bytes: int = _setting(
        16384,
        "Files up to this size (at most 262144) keep their contents in the metadata database, "
        "committed with the rest of the write: no file to create and flush per small upload. "
        "0 means every file goes to the storage. Ignored with `encryption` (the database is "
        "not encrypted by your keys).",
    )
    s3_access_key_id: str = _setting(
        "",
        "S3 access key; empty means the usual AWS chain (AWS_* variables, config files).",
    )
    s3_secret_access_key: str = _setting(
        "",
        "S3 secret key.",
        secret=True,
    )
    s3_part_size: int = _setting(
        8 * 1024 * 1024,
        "Uploads larger than this go to S3 in parts of this size (at least 5 MiB); each upload in "
        "flight buffers one part in memory.",
    )
    s3_max_attempts: int = _setting(
        5,
        "Attempts per S3 request (with exponential backoff) before the request fails.",
    )
    redis_url: str = _setting(
        "",
        "Redis or Valkey server the processes of one instance coordinate through "
        "(`redis://host:port/db`): credential revocation, link-password throttling, upload "
        "assembly leases, change notifications. Empty means inside the process, or, with "
        "several workers, through `coordination.sqlite3` in the data folder (one host); set "
        "it when running on several hosts.",
    )
    redis_key_prefix: str = _setting(
        "ecrin:",
        "Prefix of every key and channel Ecrin uses in Redis (instances sharing a server "
        "need different ones).",
    )
    default_quota_bytes: int = _setting(
        0,
        "Quota given to new users, in bytes; 0 means unlimited.",
    )
    max_upload_bytes: int = _setting(
        0,
        "Largest single request body accepted, in bytes; 0 means unlimited.",
    )
    max_xml_bytes: int = _setting(
        1_048_576,
        "Largest XML request body accepted, in bytes.",
    )
    max_xml_depth: int = _setting(
        64,
        "Deepest XML element nesting accepted.",
    )
    lock_default_timeout: int = _setting(
        1800,
        "WebDAV lock timeout in seconds when the client asks for none or 'Infinite'.",
    )
    lock_max_timeout: int = _setting(
        7 * 24 * 3600,
        "Longest WebDAV lock timeout granted.",
    )
    upload_expiry_seconds: int = _setting(
        24 * 3600,
        "Chunked uploads (Nextcloud clients) idle for longer than this are removed with their "
        "chunks.",
    )
    argon2_time_cost: int = _setting(
        2,
        "argon2id iterations for password hashes (OWASP's minimum with 19 MiB is 2; raise "
        "for more resistance to guessing). Existing hashes keep their own costs.",
    )
    argon2_memory_kib: int = _setting(
        19456,
        "argon2id memory per password hash, in KiB (each check in flight holds this much; "
        "at most one check per core runs at a time).",
    )
    credential_cache_seconds: int = _setting(
        60,
        "How long a verified credential is trusted without a new argon2 check.",
    )
    trusted_proxies: str = _setting(
        "",
        "Comma-separated proxy addresses whose X-Forwarded-* headers are trusted.",
    )
    public_url: str = _setting(
        "",
        "The URL users reach Ecrin at, if behind a proxy (used in printed links).",
    )
    log_level: str = _setting(
        "info",
        "Logging level: debug, info, warning, error.",
    )
    fsync: bool = _setting(
        True,
        "Flush contents and metadata to stable storage before acknowledging a write. Turning this "
        "off risks data loss on power failure.",
    )
    encryption: bool = _setting(
        False,
        "Encrypt file contents at rest (AES-256-GCM, one data key per file, wrapped by a key-"
        "encryption key that only you hold). See docs/encryption.md.",
    )
    kek_provider: str = _setting(
        "file",
        "Where key-encryption keys live: `file` (a local key file) or `pkcs11` (an HSM).",
    )
    kek_file: str = _setting(
        "",
        "The key file of the `file` provider; empty means `<data_dir>/encryption.keys`. Created at"
        " first start: back it up, away from the data.",
    )
    kek_id: str = _setting(
        "",
        "Key-encryption key for new files; empty means the key file's last key. Required with "
        "`pkcs11` (the key's label in the token).",
    )
    versions_max_count: int = _setting(
        50,
        "Most earlier versions kept per file (besides thinning: one per 2 s, per minute, per hour,"
        " per day, then per week as they age); 0 means no count limit.",
    )
    versions_max_age_days: int = _setting(
        0,
        "Versions older than this are deleted; 0 means never.",
    )
    trash_retention_days: int = _setting(
        30,
        "Items stay this many days in the trash before they are purged; 0 means until purged.",
    )
    trash_max_quota_share: float = _setting(
        0.5,
        "The trash may hold at most this share of its owner's quota (oldest items go first); 0 "
        "means no cap.",
    )
    link_enforce_password: bool = _setting(
        False,
        "Every public link must have a password.",
    )
    link_max_expiry_days: int = _setting(
        0,
        "Public links must expire within this many days; 0 means they may live forever.",
    )
    link_default_expiry_days: int = _setting(
        0,
        "Expiry given to a public link created without one, in days; 0 means none.",
    )
    pkcs11_module: str = _setting(
        "",
        "Path of the PKCS#11 module (`.so`) of the HSM.",
    )
    pkcs11_token_label: str = _setting(
        "",
        "Label of the PKCS#11 token holding the keys.",
    )
    pkcs11_pin_file: str = _setting(
        "",
        "File holding the PIN of the PKCS#11 token (keep it readable by Ecrin only).",
    )

    def __post_init__(self) -> None:
        if not 0 <= self.inline_max_bytes <= INLINE_MAX_LIMIT:
            raise BadRequest(f"setting inline_max_bytes: must be from 0 to {INLINE_MAX_LIMIT}")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ecrin.sqlite3').resolve()}"

    @property
    def effective_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"file://{(self.data_dir / 'blobs').resolve()}"

    @property
    def effective_inline_max_bytes(self) -> int:
        if self.encryption:
            return 0
        return self.inline_max_bytes

    @property
    def effective_kek_file(self) -> Path:
        return Path(self.kek_file) if self.kek_file else self.data_dir / "encryption.keys"

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_TYPES = get_type_hints(Settings)
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, _TYPES[f.name], f.default, f.metadata["help"], f.metadata["secret"])
    for f in dataclasses.fields(Settings)
)
_BY_NAME = {s.name: s for s in SETTINGS}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Resolve settings from defaults, config file, environment and overrides."""
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}

    env_values = {s.name: environ[s.env_var] for s in SETTINGS if s.env_var in environ}
    data_dir = Path(overrides.get("data_dir", env_values.get("data_dir", values["data_dir"])))
    path = config_file or (
        Path(environ["ECRIN_CONFIG"]) if "ECRIN_CONFIG" in environ else data_dir / "ecrin.toml"
    )
    if path.is_file():
        values.update(_read_config_file(path))
    elif config_file is not None:
        raise BadRequest(f"config file {config_file} does not exist")
    values.update(env_values)
    values.update(overrides)
    return Settings(**{name: _coerce(_BY_NAME[name], v) for name, v in values.items()})


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BadRequest(f"cannot read config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise BadRequest(f"unknown setting(s) in {path}: {', '.join(unknown)}")
    return data


def render_reference() -> str:
    """The configuration reference, in Markdown (docs/configuration.md is this text)."""
    lines = [
        "# Configuration",
        "",
        "Every setting can be given in the TOML config file (`ecrin.toml` in the data "
        "directory, or the file named by `ECRIN_CONFIG` / `--config`), as an environment "
        "variable, or for some as a command-line flag. Flags win over the environment, "
        "which wins over the file. `ecrin config show` prints the values in force.",
        "",
        "| setting | env var | type | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        default = s.default if s.default != "" else '""'
        lines.append(f"| `{s.name}` | `{s.env_var}` | {s.type.__name__} | `{default}` | {s.help} |")
    return "\n".join(lines) + "\n"
