"""The ``shopflow`` command.

shopflow generate [--customers N] [--products N] [--days N] [--start DATE] [--seed S]
                  [--profile wholesale|marketplace|fashion]
                  [--regime-change DATE [--regime-new-habits]]
shopflow load --source online-retail-ii PATH
shopflow load --mapping my_shop.yml         # the shop's own exports, described in YAML
shopflow config show                      # the shop's configuration: each value and its source
shopflow up | down | status               # the local Airflow services (UI, scheduler, ...)
shopflow run --date YYYY-MM-DD            # shopflow_nightly through the scheduler
shopflow backfill --start D1 --end D2 [--dag DAG]  # Airflow's backfill, oldest date first
shopflow demo                             # what `make run` calls
shopflow report --date YYYY-MM-DD         # the night's HTML report
shopflow models list|show                 # the model registry
shopflow models train MODEL --date D      # train and register a challenger (not promoted)
shopflow models rollback MODEL [--to VERSION] | promote MODEL VERSION --reason TEXT
shopflow retrain --date YYYY-MM-DD        # shopflow_retrain through the scheduler
shopflow airflow ARGS...                  # the embedded Airflow CLI (e.g. `dags list`)
shopflow backtest recommend [--date D]    # ranker vs baselines, last 28 days held out
shopflow backtest forecast [--date D] [--origins N]  # forecaster vs baselines, rolling origin

Backtests print and write nothing. The CLI calls the jobs (shopflow.jobs) and the platform,
never ml directly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from shopflow.settings import Settings, load_settings

DEMO_QUERIES = """\
-- top 10 recommendations of one customer, latest run
select customer_id, rank, product_id, round(score, 3) as score, reason, model_version
from exports.recommendations
where run_date = (select max(run_date) from exports.recommendations)
  and customer_id = (select min(customer_id) from exports.recommendations)
order by rank;

-- units expected per product over the next 7 days, biggest first
select product_id, round(sum(units_mean), 1) as units_next_7_days,
       round(sum(units_p90), 1) as units_p90_sum
from exports.demand_forecast
where run_date = (select max(run_date) from exports.demand_forecast) and horizon_days <= 7
group by product_id order by units_next_7_days desc limit 10;

-- how the champion models compare with the baselines on their holdout
select task, model_name, metric, segment, round(value, 4) as value, status
from exports.model_performance
where segment = 'all'
order by task, metric, model_name;
"""


# shop profiles of the generator (shopflow.generator.profiles), listed here so that the parser
# does not import the generator
SHOP_PROFILES = ("wholesale", "marketplace", "fashion")
PROFILE_HELP = (
    "wholesale: the demo shop (default); marketplace: one-time buyers, a long tail of slow "
    "products, one country (BRL); fashion: strong seasons, short product lives, launches"
)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from exc


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.generator import ShopSpec, generate_shop

    spec = ShopSpec(
        customers=args.customers,
        products=args.products,
        days=args.days,
        start=args.start,
        seed=args.seed,
        profile=args.profile,
        regime_change=args.regime_change,
        regime_new_habits=args.regime_new_habits,
    )
    settings.ensure_dirs()
    started = time.perf_counter()
    shop = generate_shop(spec, settings.landing_dir)
    print(
        f"generated {shop.order_lines:,} order lines in {shop.orders:,} orders, "
        f"{shop.customers:,} customers, {shop.products:,} products, "
        f"{shop.first_date} .. {shop.last_date} into {settings.landing_dir} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.adapters import load_source

    if args.mapping is not None:
        from shopflow.adapters.mapping import MappingAdapter

        if args.path is not None:
            raise ValueError(
                "shopflow load --mapping FILE takes no PATH: the mapping names its files"
            )
        source, path = MappingAdapter(), Path(args.mapping)
    else:
        if args.path is None:
            raise ValueError(f"shopflow load --source {args.source} needs the PATH of the file")
        source, path = args.source, Path(args.path)
    settings.ensure_dirs()
    # business dates are the shop's local dates (shop.timezone)
    result = load_source(source, path, settings.landing_dir, timezone=settings.timezone)
    print(json.dumps(result.__dict__, default=str, indent=2))
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.config import show

    print(show(settings))
    return 0


def run_through_airflow(settings: Settings, dag_id: str, run_date: dt.date) -> float:
    """Run ``dag_id`` for ``run_date`` through the scheduler (services started when not up),
    reporting its tasks as they go; returns seconds taken."""
    from shopflow.deploy.runs import run_dag

    settings.ensure_dirs()
    started = time.perf_counter()
    run_dag(settings, dag_id, run_date)
    return time.perf_counter() - started


def _run_failed(exc: Exception) -> int:
    from shopflow.summary import emit_summary

    emit_summary(f"FAILED: {exc}")  # stderr, whole, even when stdout's file is on a full disk
    return 1


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.deploy.runs import DagRunFailedError
    from shopflow.deploy.services import ServiceError

    try:
        seconds = run_through_airflow(settings, "shopflow_nightly", args.date)
    except (DagRunFailedError, ServiceError) as exc:
        return _run_failed(exc)
    print(f"shopflow_nightly for {args.date} succeeded in {seconds:.1f} s")
    print_outputs(settings)
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from shopflow.deploy.services import ServiceError, login_help, up

    if getattr(args, "executor", None):
        settings = replace(settings, airflow_executor=args.executor)
    try:
        up(settings)
    except ServiceError as exc:
        return _run_failed(exc)
    print(login_help(settings))
    print(schedule_line(settings))
    print("Runs: shopflow run --date YYYY-MM-DD; stop everything: shopflow down")
    return 0


def schedule_line(settings: Settings) -> str:
    """Whether Airflow creates scheduled runs for this home, and where that was set."""
    source = settings.config_sources.get("schedule", "default")
    if settings.schedule:
        return (
            "schedule: on: shopflow_nightly after each business day (UTC midnight), "
            f"shopflow_retrain on Sundays 05:00 UTC ({source})"
        )
    return f"schedule: off: only the runs asked for ({source})"


def configure_demo_home(settings: Settings, last_date: dt.date) -> Settings:
    """A new demo home gets a shopflow.toml with the schedule off (its data is history); a
    home that has a configuration file keeps it as it is."""
    from shopflow.config import config_path

    path = config_path(settings.home)
    if path.exists():
        return settings
    path.write_text(DEMO_CONFIG.format(last_date=last_date))
    import os

    return load_settings({**os.environ, "SHOPFLOW_HOME": str(settings.home)})


DEMO_CONFIG = """\
# Shopflow's configuration of this home; `shopflow config show` lists every setting.
[airflow]
# The demo shop's data is history (its last day is {last_date}): no data lands for today, so
# Airflow creates no scheduled runs here. A shop whose data lands every night keeps the
# default, true.
schedule = false
"""


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.deploy.services import down

    if not down(settings):
        print("no Shopflow Airflow service was running")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Each service alive or dead, and the URL; exit code 1 unless all are running."""
    from shopflow.deploy.env import deployed_executor
    from shopflow.deploy.services import status

    states = status(settings)
    for state in states:
        shown = f"alive (pid {state.pid})" if state.alive else "dead"
        if not state.alive and state.pid:
            shown += f" (pid file {state.pid} is stale)"
        print(f"{state.name:<14} {shown:<32} log: {state.log}")
    print(f"executor: {deployed_executor(settings)}")
    _print_unpublished(settings)
    if all(s.alive for s in states):
        print(f"Airflow UI: {settings.airflow_url}")
        return 0
    print("not (fully) up: `shopflow up` starts what is missing")
    return 1


def _print_unpublished(settings: Settings) -> None:
    """Dates a night started (or scored) but never published: on-call should rerun them."""
    from shopflow.machine import MachineError
    from shopflow.publish import unpublished_dates
    from shopflow.warehouse import WarehouseBusyError

    try:
        missing = unpublished_dates(settings)
    except (WarehouseBusyError, MachineError):
        print("unpublished dates: unknown (the warehouse is busy; a night is running)")
        return
    if missing:
        dates = ", ".join(d.isoformat() for d in missing)
        print(
            f"NOT PUBLISHED: {dates} (a night started but never published; a running night's "
            "date shows here too): rerun with `shopflow run --date D`"
        )


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.deploy.runs import DagRunFailedError, backfill
    from shopflow.deploy.services import ServiceError

    settings.ensure_dirs()
    started = time.perf_counter()
    try:
        runs = backfill(settings, args.dag, args.start, args.end)
    except (DagRunFailedError, ServiceError) as exc:
        return _run_failed(exc)
    print(
        f"{args.dag} backfill {args.start} .. {args.end}: {len(runs)} runs succeeded in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


def latest_landing_date(settings: Settings) -> dt.date | None:
    root = settings.landing_dir / "order_lines"
    dates = []
    if root.is_dir():
        for child in root.iterdir():
            try:
                dates.append(dt.date.fromisoformat(child.name))
            except ValueError:
                continue
    return max(dates) if dates else None


def print_outputs(settings: Settings) -> None:
    import duckdb

    db = settings.published_db_path
    print(f"\nPublished database: {db}")
    print(f"Parquet mirror:     {settings.exports_dir}/<table>/run_date=<YYYY-MM-DD>/")
    print(f"Data quality docs:  {settings.quality_dir}")
    if db.exists():
        con = duckdb.connect(str(db), read_only=True)
        try:
            for table in ("recommendations", "demand_forecast", "model_performance"):
                count = con.execute(f"select count(*) from exports.{table}").fetchone()[0]
                print(f"  exports.{table}: {count:,} rows")
        finally:
            con.close()
    print(f"\nTry it (duckdb {db} or any DuckDB client):\n")
    print(DEMO_QUERIES)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.deploy.runs import DagRunFailedError
    from shopflow.deploy.services import ServiceError, login_help
    from shopflow.generator import ShopSpec, generate_shop

    settings.ensure_dirs()
    spec = ShopSpec(profile=getattr(args, "profile", "wholesale"))
    started = time.perf_counter()
    shop = generate_shop(spec, settings.landing_dir)
    print(
        f"demo shop: {shop.order_lines:,} order lines, {shop.customers:,} customers, "
        f"{shop.products:,} products, {shop.first_date} .. {shop.last_date} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    run_date = shop.last_date
    settings = configure_demo_home(settings, run_date)
    print(schedule_line(settings))
    print(f"running shopflow_nightly for {run_date} through the Airflow scheduler ...")
    try:
        seconds = run_through_airflow(settings, "shopflow_nightly", run_date)
    except (DagRunFailedError, ServiceError) as exc:
        return _run_failed(exc)
    print(f"shopflow_nightly for {run_date} succeeded in {seconds:.1f} s (DAG run)")
    print_outputs(settings)
    print(login_help(settings))
    keeps = "the UI, scheduled nights" if settings.schedule else "the UI, the runs you ask for"
    print(f"Airflow keeps running ({keeps}): `shopflow down` stops it.")
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.registry import Registry

    registry = Registry(settings)
    if args.models_command == "train":
        return cmd_models_train(args, settings)
    if args.models_command in ("rollback", "promote"):
        return cmd_models_change(args, settings, registry)
    if args.models_command == "list":
        versions = registry.versions(args.model)
        if not versions:
            print("no model versions registered yet")
            return 0
        print(f"{'model':<18} {'version':<22} {'status':<11} {'cutoff':<10}  reason")
        from ml.serving import baseline_of

        for v in versions:
            # a baseline version says which baseline it is: what serves when it is champion
            kind = f"[{baseline_of(v)}] " if baseline_of(v) else ""
            print(
                f"{v.model_name:<18} {v.version:<22} {v.status:<11} {v.cutoff_date!s:<10}  "
                f"{kind}{v.status_reason or ''}"
            )
        return 0
    version = (
        registry.get(args.model, args.version) if args.version else registry.champion(args.model)
    )
    if version is None:
        print(f"no such version of {args.model}", file=sys.stderr)
        return 1
    print(json.dumps(version.__dict__, default=str, indent=2))
    return 0


def cmd_models_change(args: argparse.Namespace, settings: Settings, registry) -> int:
    """`models rollback` and `models promote`: human decisions, recorded with who and why."""
    import getpass

    actor = f"{getpass.getuser()} (shopflow models {args.models_command})"
    if args.models_command == "promote":
        from shopflow.jobs.retrain import incompatibility

        version = registry.get(args.model, args.version)
        if version is None:
            print(f"no such version of {args.model}: {args.version}", file=sys.stderr)
            return 1
        if incompatibility(args.model, version):
            print(f"error: {incompatibility(args.model, version)}", file=sys.stderr)
            return 1
        registry.promote(args.model, args.version, actor=actor, reason=f"manual: {args.reason}")
        print(f"{args.model}: {args.version} is champion ({args.reason})")
        print("The next nightly run publishes with it; its post-publish checks still apply.")
        return 0
    from shopflow.jobs.rollback import rollback_model

    try:
        done = rollback_model(
            settings, args.model, args.to, actor=actor, reason=f"manual: {args.reason}"
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model}: {done['rolled_back']} rolled back, {done['champion']} is champion")
    if "republished" in done:
        print(f"exports for {done['republished']['run_date']} rebuilt: {done['republished']}")
    else:
        print("nothing published yet: the next nightly run publishes with it")
    return 0


def cmd_models_train(args: argparse.Namespace, settings: Settings) -> int:
    """`models train`: train MODEL as of the date and register it as a challenger (never
    promoted): reads the warehouse through its lock, writes only the registry (its own lock)."""
    from shopflow.jobs.retrain import train_model

    settings.ensure_dirs()
    result = train_model(settings, args.model, args.date, created_by="shopflow models train")
    version = result.version
    print(
        f"registered {version.model_name} {version.version} as {version.status}; the next "
        "publish puts its metrics and the baselines' into exports.model_performance "
        f"(model_version {version.version}); promote it with `shopflow models promote`"
    )
    return 0


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.deploy.runs import DagRunFailedError
    from shopflow.deploy.services import ServiceError

    try:
        seconds = run_through_airflow(settings, "shopflow_retrain", args.date)
    except (DagRunFailedError, ServiceError) as exc:
        return _run_failed(exc)
    print(f"shopflow_retrain for {args.date} succeeded in {seconds:.1f} s")
    decisions = settings.models_dir / "retrain" / args.date.isoformat() / "decisions.json"
    if decisions.exists():
        for name, decision in json.loads(decisions.read_text()).items():
            verdict = "promoted" if decision["promote"] else "kept as challenger"
            print(f"  {name} {decision['challenger']}: {verdict}: {decision['reason']}")
    return 0


def cmd_airflow(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.deploy.env import airflow, migrate_database

    settings.ensure_dirs()
    migrate_database(settings)
    return airflow(settings, *args.airflow_args).returncode


def cmd_backtest_recommend(args: argparse.Namespace, settings: Settings) -> int:
    """Backtest the recommender (last 28 days held out) and print the table; writes nothing."""
    from shopflow.jobs.backtests import backtest_recommend, recommend_report

    print(recommend_report(backtest_recommend(settings, args.date)))
    return 0


def cmd_backtest_forecast(args: argparse.Namespace, settings: Settings) -> int:
    """Rolling-origin backtest of the forecaster vs its baselines; prints, writes nothing."""
    from shopflow.jobs.backtests import backtest_forecast, forecast_report

    print(forecast_report(backtest_forecast(settings, args.date, args.origins)))
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """A consistent copy of the home's state (see shopflow.backup)."""
    from shopflow.backup import backup

    manifest = backup(settings, args.path)
    count = sum(len(files) for files in manifest["files"].values())
    print(f"backed up {', '.join(sorted(manifest['files']))} ({count} files) to {args.path}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Restore a backup into this home; exit 1 when a model artifact fails its checksum."""
    from shopflow.backup import restore

    result = restore(settings, args.path)
    print(f"restored {', '.join(result['restored'])} from {args.path} into {settings.home}")
    for line in result["corrupted"]:
        print(f"CORRUPTED: {line}")
    return 1 if result["corrupted"] else 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """Write the static HTML report of a date ($SHOPFLOW_HOME/reports/<date>/index.html)."""
    from shopflow.report import write_report

    print(write_report(settings, args.date)["path"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopflow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic shop into the landing zone")
    gen.add_argument("--customers", type=int, default=5000)
    gen.add_argument("--products", type=int, default=1000)
    gen.add_argument("--days", type=int, default=365)
    gen.add_argument("--start", type=_date, default=dt.date(2025, 1, 1))
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--profile", choices=SHOP_PROFILES, default="wholesale", help=PROFILE_HELP)
    gen.add_argument(
        "--regime-change",
        type=_date,
        default=None,
        help="from this date on demand jumps and tastes shift (a stale-model scenario)",
    )
    gen.add_argument(
        "--regime-new-habits",
        action="store_true",
        help="with --regime-change: each customer's preferred categories and habitual "
        "products are drawn anew at the change (a stale ranker)",
    )
    gen.set_defaults(func=cmd_generate)

    load = sub.add_parser(
        "load",
        help="map a public export format or the shop's own exports onto the landing contract",
    )
    load_from = load.add_mutually_exclusive_group(required=True)
    load_from.add_argument("--source", help="adapter name, e.g. online-retail-ii")
    load_from.add_argument(
        "--mapping", metavar="FILE", help="a YAML mapping of the shop's own CSV/Parquet exports"
    )
    load.add_argument("path", nargs="?", help="the file to load (with --source)")
    load.set_defaults(func=cmd_load)

    config = sub.add_parser(
        "config", help="the shop's configuration ($SHOPFLOW_HOME/shopflow.toml)"
    )
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("show", help="every setting, its value and where it came from")
    config.set_defaults(func=cmd_config)

    run = sub.add_parser("run", help="run shopflow_nightly for a business date via Airflow")
    run.add_argument("--date", type=_date, required=True)
    run.set_defaults(func=cmd_run)

    up_cmd = sub.add_parser(
        "up", help="start the local Airflow services (UI, scheduler, ...) and print the URL"
    )
    up_cmd.add_argument(
        "--executor",
        choices=("local", "celery"),
        default=None,
        help="local: LocalExecutor on SQLite (default); celery: Postgres, Redis and two Celery "
        "workers (scripts/install_services.sh installs Postgres and Redis). Default: the "
        "executor last started, else SHOPFLOW_AIRFLOW_EXECUTOR, else local",
    )
    up_cmd.set_defaults(func=cmd_up)

    for name, func, text in (
        ("down", cmd_down, "stop the local Airflow services"),
        ("status", cmd_status, "each Airflow service alive or dead, and the URL"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=func)

    bf = sub.add_parser("backfill", help="Airflow's backfill of a DAG over business dates")
    bf.add_argument("--start", type=_date, required=True)
    bf.add_argument("--end", type=_date, required=True)
    bf.add_argument(
        "--dag", default="shopflow_nightly", choices=("shopflow_nightly", "shopflow_retrain")
    )
    bf.set_defaults(func=cmd_backfill)

    demo = sub.add_parser("demo", help="generate the demo shop and run the last date")
    demo.add_argument("--profile", choices=SHOP_PROFILES, default="wholesale", help=PROFILE_HELP)
    demo.set_defaults(func=cmd_demo)

    models = sub.add_parser("models", help="the model registry")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="every version and its status")
    listing.add_argument("model", nargs="?")
    show = models_sub.add_parser("show", help="one version's record (default: the champion)")
    show.add_argument("model")
    show.add_argument("version", nargs="?")
    train = models_sub.add_parser(
        "train", help="train MODEL as of --date and register it as a challenger (not promoted)"
    )
    train.add_argument("model", choices=("demand_forecast", "recommendations"))
    train.add_argument("--date", type=_date, required=True)
    rollback = models_sub.add_parser(
        "rollback", help="restore the previous champion (or --to VERSION) and republish"
    )
    rollback.add_argument("model")
    rollback.add_argument("--to", metavar="VERSION")
    rollback.add_argument("--reason", default="manual rollback")
    promote = models_sub.add_parser("promote", help="make VERSION champion (human override)")
    promote.add_argument("model")
    promote.add_argument("version")
    promote.add_argument("--reason", required=True, help="why, for the record")
    models.set_defaults(func=cmd_models)

    retrain = sub.add_parser("retrain", help="run shopflow_retrain for a date via Airflow")
    retrain.add_argument("--date", type=_date, required=True)
    retrain.set_defaults(func=cmd_retrain)

    backtest = sub.add_parser("backtest", help="temporal backtests of a model vs its baselines")
    backtest_sub = backtest.add_subparsers(dest="backtest_command", required=True)
    bt_recommend = backtest_sub.add_parser(
        "recommend",
        help="ranker vs popularity, repurchase, co-occurrence, recency-weighted repurchase",
    )
    bt_recommend.add_argument(
        "--date", type=_date, help="business date (default: the warehouse's last build date)"
    )
    bt_recommend.set_defaults(func=cmd_backtest_recommend)
    bt_forecast = backtest_sub.add_parser(
        "forecast", help="forecaster vs seasonal naive, 28-day mean, zero (rolling origin)"
    )
    bt_forecast.add_argument(
        "--date", type=_date, help="business date (default: the warehouse's last feature date)"
    )
    bt_forecast.add_argument(
        "--origins", type=int, default=2, help="28-day windows ending at the date (default 2)"
    )
    bt_forecast.set_defaults(func=cmd_backtest_forecast)

    bk = sub.add_parser(
        "backup", help="copy warehouse, registry, models, exports, quality results to PATH"
    )
    bk.add_argument("path", type=Path)
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="replace this home's state by the backup in PATH")
    rs.add_argument("path", type=Path)
    rs.set_defaults(func=cmd_restore)

    report = sub.add_parser("report", help="write the night's static HTML report for a date")
    report.add_argument("--date", type=_date, required=True, help="business date YYYY-MM-DD")
    report.set_defaults(func=cmd_report)

    af = sub.add_parser(
        "airflow", help="the embedded Airflow's CLI, e.g. `shopflow airflow dags list`"
    )
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()  # a bad shopflow.toml is a ConfigError (a ValueError)
        return args.func(args, settings)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
