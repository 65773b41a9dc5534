"""Gateway configuration: defaults, then a TOML file, then ``YRDGW_*`` environment variables.

Loaded once at the edge (the CLI) and passed down as a frozen object.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mutual_recognition import DELTA_REGIONS, EtsOffsetPolicy


class GatewaySettings(BaseSettings):
    """Everything ``yrdgw serve`` needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="YRDGW_", frozen=True, extra="forbid", toml_file=None
    )

    listen: str = "127.0.0.1:50051"
    """host:port the gRPC server binds; port 0 picks a free port."""

    database_url: str = "sqlite:///./var/yrdgw.sqlite3"
    """SQLAlchemy URL: SQLite (embedded default) or ``postgresql+psycopg://…``."""

    cert_dir: Path = Path("certs/dev")
    """Directory laid out by ``yrdgw pki init``: root CA, gateway certificate, CRL, keys."""

    metrics_listen: str = "127.0.0.1:9464"
    """host:port of the Prometheus endpoint; an empty string disables it."""

    tracing_otlp_endpoint: str = ""
    """OTLP/gRPC collector (e.g. ``http://127.0.0.1:4317``) to export traces to; empty: no
    tracing (the default)."""

    max_message_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    """Largest gRPC message accepted or sent, in bytes."""

    max_concurrent_rpcs: int = Field(default=256, gt=0)
    """RPCs served at once; further calls get RESOURCE_EXHAUSTED."""

    max_workers: int = Field(default=16, gt=0)
    """Threads serving RPCs."""

    keepalive_time_ms: int = Field(default=30_000, gt=0)
    """Interval of server keepalive pings on idle connections."""

    keepalive_timeout_ms: int = Field(default=10_000, gt=0)
    """How long to wait for a keepalive ack before closing the connection."""

    min_client_ping_interval_ms: int = Field(default=10_000, gt=0)
    """Clients pinging more often than this are told to back off (GOAWAY too_many_pings)."""

    shutdown_grace_s: float = Field(default=10.0, ge=0)
    """On SIGTERM, how long in-flight calls may take to finish."""

    storage_probe_interval_s: float = Field(default=5.0, gt=0)
    """How often health asks the database for ``SELECT 1`` while it answers (and at once after a
    call failed with STORAGE_UNAVAILABLE); health is NOT_SERVING while it does not."""

    storage_probe_retry_s: float = Field(default=0.5, gt=0)
    """How often it asks while the database cannot be reached (health SERVING again as soon as
    it answers); also the least time between two probes."""

    log_format: Literal["auto", "json", "console"] = "auto"
    """``json`` for production, ``console`` for a terminal; ``auto``: console on a TTY."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level logged."""

    ets_offset_policies: dict[str, EtsOffsetPolicy] = Field(
        default_factory=lambda: {
            "310000": EtsOffsetPolicy(max_share=Decimal("0.05"), vintage_window_years=3)
        }
    )
    """ETS regions and their offset policies; retiring as ETS_OFFSET elsewhere is refused."""

    recognition_enforced: bool = True
    """Transfers and ETS offsets need the destination's recognition (check 5); False lets every
    region accept every unit (a stand-in for tests and migrations, logged at start)."""

    recognition_approvals: dict[str, int] = Field(default_factory=lambda: {"310000": 2})
    """Distinct administrators of a recognising region who must approve (others: 1)."""

    delta_wide_needs_every_region: bool = False
    """Whether a delta-wide recognition is in force only once every region approved it."""

    proposal_ttl_s: float = Field(default=24 * 3600, gt=0)
    """How long a transfer proposal waits for the destination's answer before it expires."""

    sign_time_skew_s: float = Field(default=600, gt=0)
    """How far an envelope's ``sign_time`` may be from the gateway's clock, either way, for the
    envelope to take a new place in its signer's chain (SIGN_TIME_OUT_OF_RANGE beyond)."""

    migrate_on_start: bool = True
    """Run Alembic migrations to head when the server starts."""

    scheduler_enabled: bool = True
    """Run the scheduled jobs inside ``yrdgw serve`` (``yrdgw scheduler`` runs them alone). With
    several gateway processes on one database, each scheduled run still happens once."""

    scheduler_timezone: str = "Asia/Shanghai"
    """Time zone the cron expressions are read in."""

    reconcile_cron: str = "0 2 * * *"
    """When to reconcile every region's latest holdings snapshot: crontab (minute hour day month
    day-of-week), or six fields with seconds first."""

    expire_cron: str = "* * * * *"
    """When to expire transfer proposals past their deadline."""

    verify_cron: str = "30 3 * * *"
    """When to check the ledger invariants and the whole audit chain."""

    job_misfire_grace_s: int = Field(default=300, gt=0)
    """A run that could not start within this many seconds of its time is skipped (the next one
    catches up); runs missed meanwhile are coalesced into one."""

    reconcile_regions: tuple[str, ...] = DELTA_REGIONS
    """Regions the scheduled reconciliation covers."""

    fault_kill_after_commit: int = Field(default=0, ge=0)
    """For the crash tests only, never in production: the process SIGKILLs itself right after
    the N-th transfer write (propose, accept, reject, cancel) it committed, before the reply is
    sent. 0, the default, turns it off."""

    @field_validator("reconcile_cron", "expire_cron", "verify_cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        from gateway.cron import cron_trigger

        cron_trigger(value, "UTC")  # raises ValueError on a bad expression
        return value

    @field_validator("scheduler_timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then YRDGW_* variables, then the TOML file, then defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: object) -> GatewaySettings:
    """Load settings from a TOML file (argument, else ``YRDGW_CONFIG``), the environment and
    explicit overrides."""
    path = config_file or (
        Path(os.environ["YRDGW_CONFIG"]) if os.environ.get("YRDGW_CONFIG") else None
    )
    if path is None:
        return GatewaySettings(**overrides)  # type: ignore[arg-type]
    if not path.is_file():
        raise FileNotFoundError(f"configuration file {path} does not exist")

    class FromFile(GatewaySettings):
        model_config = SettingsConfigDict(toml_file=path)

    return FromFile(**overrides)  # type: ignore[arg-type]
