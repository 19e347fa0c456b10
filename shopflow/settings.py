"""The one place that reads the environment.

Everything else receives a :class:`Settings` instance. All state lives under
``SHOPFLOW_HOME`` (default: ``.shopflow/`` in the project checkout, ignored by git)::

    $SHOPFLOW_HOME/
      landing/<entity>/<YYYY-MM-DD>/*.parquet|*.csv   what a shop hands over
      warehouse/shopflow.duckdb                         raw + dbt models + predictions (private)
      exports/shopflow.duckdb                           published database (analysts read this)
      exports/<table>/run_date=<YYYY-MM-DD>/*.parquet   published Parquet mirror
      exports -> .snapshots/<n>/                        exports is a symlink (shopflow.snapshots)
      models/                                           model registry (artifacts + registry.duckdb)
      quality/                                          validation results and Data Docs
      reports/<YYYY-MM-DD>/index.html                   the night's static HTML report
      airflow/                                          AIRFLOW_HOME (SQLite metadata db, logs)
      airflow/services/                                 pid file + log per Airflow service
      postgres/, redis/                                 Celery deployment: metadata DB, broker
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shopflow.config import iso_currencies, resolve

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be an integer, got {raw!r}") from exc


def _env_choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw not in choices:
        raise ValueError(f"setting {name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Paths and knobs of one Shopflow installation."""

    home: Path
    project_root: Path = PROJECT_ROOT
    recommendations_k: int = 10
    forecast_horizon_days: int = 28
    active_customer_days: int = 90
    active_product_days: int = 90
    duckdb_memory_limit: str = "4GB"
    duckdb_threads: int = 2
    # the local Airflow deployment (`shopflow up`): its API server / UI port and admin password
    airflow_port: int = 8080
    airflow_admin_password: str | None = None
    # its executor: "local" (LocalExecutor, SQLite) or "celery" (CeleryExecutor, Postgres,
    # Redis, two workers); None: the one `shopflow up` last started, else "local"
    airflow_executor: str | None = None
    # the Celery queue of tasks that read or write SHOPFLOW_HOME: only workers on the machine
    # holding it serve it (shopflow.deploy.topology)
    home_queue: str = "shopflow_home"
    # first wait before a task that failed on the machine is retried (then doubled)
    retry_delay_seconds: int = 120
    # longest wait for one DAG run (or backfill) started by `shopflow run|retrain|backfill`
    run_timeout_minutes: int = 180
    # where on-call opens the Airflow UI, for the links in failure messages (runbooks, Data
    # Docs); None: the local deployment's airflow_url
    ui_base_url: str | None = None
    # recipients of failure e-mails (SMTP connection `shopflow_smtp`); empty: no e-mail
    alert_emails: tuple[str, ...] = ()
    # live accuracy (shopflow.jobs.feedback): a recommendation list published at D is scored on
    # purchases in (D, D + live_window_days]; the serving champion is rolled back when it is
    # worse than the best baseline by more than live_margin (relative) in live_evaluations
    # evaluations in a row
    live_window_days: int = 28
    live_margin: float = 0.1
    live_evaluations: int = 3
    # nightly HTML reports kept (the latest run dates); older ones are removed
    reports_kept: int = 60
    # -- the shop (shopflow.config: $SHOPFLOW_HOME/shopflow.toml, environment overrides) ------
    # currencies a line may carry: every ISO 4217 code unless the configuration restricts it
    known_currencies: tuple[str, ...] = field(default_factory=iso_currencies)
    # IANA time zone of the business day: a line belongs to the local date of its ordered_at
    timezone: str = "UTC"
    max_quarantined_share: float = 0.05
    volume_spike_ratio: float = 10.0
    volume_drop_ratio: float = 0.1
    # volume rules on a first load of history or a backfill of earlier dates
    history_volume_severity: str = "warning"
    max_line_quantity: int = 10000
    # a line beyond this multiple of its product's (else the shop's) largest line so far
    implausible_line_factor: float = 100.0
    implausible_line_severity: str = "warning"  # or "quarantine"
    # Airflow creates the scheduled runs (nightly, weekly retraining); False: only runs asked
    # for. A scheduled night waits for its landing data holding the one run slot, so a home
    # whose data never lands for today (the demo's history) must not schedule.
    schedule: bool = True
    # where each configured value came from (field -> "default", the file and key, "env X")
    config_sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    # -- locations ---------------------------------------------------------------------------
    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse_dir / "shopflow.duckdb"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def published_db_path(self) -> Path:
        return self.exports_dir / "shopflow.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def registry_path(self) -> Path:
        return self.models_dir / "registry.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def quality_dir(self) -> Path:
        return self.home / "quality"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def airflow_services_dir(self) -> Path:
        """Pid files, one log per service and the admin password of `shopflow up`."""
        return self.airflow_home / "services"

    @property
    def airflow_url(self) -> str:
        """Base URL of the local API server (UI, REST API, execution API)."""
        return f"http://localhost:{self.airflow_port}"

    @property
    def ui_url(self) -> str:
        """The Airflow UI as on-call opens it: ``SHOPFLOW_UI_URL``, else :attr:`airflow_url`."""
        return self.ui_base_url or self.airflow_url

    @property
    def airflow_log_server_ports(self) -> tuple[int, int]:
        """Ports of the task and triggerer log servers: next to the API server's, so that
        two deployments on one machine (another SHOPFLOW_HOME and port) never share one."""
        return self.airflow_port + 1, self.airflow_port + 2

    @property
    def postgres_port(self) -> int:
        """Port of the Celery deployment's Postgres (metadata database), after the log servers'."""
        return self.airflow_port + 3

    @property
    def redis_port(self) -> int:
        """Port of the Celery deployment's Redis (the broker)."""
        return self.airflow_port + 4

    @property
    def flower_port(self) -> int:
        """Port of the Celery deployment's Flower (Celery's monitoring UI)."""
        return self.airflow_port + 5

    @property
    def flower_url(self) -> str:
        return f"http://localhost:{self.flower_port}"

    @property
    def postgres_dir(self) -> Path:
        """The Celery deployment's Postgres data directory (owned by the ``postgres`` user)."""
        return self.home / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_root / "dbt_project"

    @property
    def expectations_dir(self) -> Path:
        return self.project_root / "expectations"

    @property
    def dags_dir(self) -> Path:
        return self.project_root / "dags"

    def ensure_dirs(self) -> None:
        """Create the state folders (idempotent)."""
        for path in (
            self.landing_dir,
            self.warehouse_dir,
            self.exports_dir,
            self.models_dir,
            self.quality_dir,
            self.airflow_home,
            self.tmp_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that dbt's profiles.yml reads with env_var()."""
        return {
            "SHOPFLOW_WAREHOUSE_PATH": str(self.warehouse_path),
            "SHOPFLOW_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "SHOPFLOW_DUCKDB_THREADS": str(self.duckdb_threads),
            "SHOPFLOW_TMP_DIR": str(self.tmp_dir),
            "SHOPFLOW_LIVE_WINDOW_DAYS": str(self.live_window_days),
        }

    def dbt_vars(self) -> dict:
        """The shop's configuration as dbt vars (accepted currencies, business-day time zone),
        passed on every dbt invocation so dbt's tests read the same values as the gates."""
        return {"currencies": list(self.known_currencies), "shop_timezone": self.timezone}


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from the environment (``os.environ`` unless given) and the shop's
    configuration file ``$SHOPFLOW_HOME/shopflow.toml`` (see :mod:`shopflow.config`; an
    environment variable wins over the file)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("SHOPFLOW_HOME") or PROJECT_ROOT / ".shopflow").expanduser().resolve()
    configured = resolve(home, env)
    return Settings(
        home=home,
        **configured.values,
        config_sources=configured.sources,
        duckdb_memory_limit=env.get("SHOPFLOW_DUCKDB_MEMORY_LIMIT") or "4GB",
        duckdb_threads=_env_int(env, "SHOPFLOW_DUCKDB_THREADS", 2),
        airflow_port=_env_int(env, "SHOPFLOW_AIRFLOW_PORT", 8080),
        airflow_admin_password=env.get("SHOPFLOW_AIRFLOW_ADMIN_PASSWORD") or None,
        airflow_executor=_env_choice(env, "SHOPFLOW_AIRFLOW_EXECUTOR", ("local", "celery")),
        home_queue=env.get("SHOPFLOW_HOME_QUEUE") or "shopflow_home",
        run_timeout_minutes=_env_int(env, "SHOPFLOW_RUN_TIMEOUT_MINUTES", 180),
        retry_delay_seconds=_env_int(env, "SHOPFLOW_RETRY_DELAY_SECONDS", 120),
        ui_base_url=(env.get("SHOPFLOW_UI_URL") or "").rstrip("/") or None,
        live_window_days=_env_int(env, "SHOPFLOW_LIVE_WINDOW_DAYS", 28),
        live_margin=float(env.get("SHOPFLOW_LIVE_MARGIN") or 0.1),
        live_evaluations=_env_int(env, "SHOPFLOW_LIVE_EVALUATIONS", 3),
        reports_kept=_env_int(env, "SHOPFLOW_REPORTS_KEPT", 60),
        alert_emails=tuple(
            a.strip() for a in (env.get("SHOPFLOW_ALERT_EMAILS") or "").split(",") if a.strip()
        ),
    )
