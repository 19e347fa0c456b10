"""Model registry: versions, their artifacts and checksums, and who is champion.

State lives in ``$SHOPFLOW_HOME/models``: one folder per version with the artifact files
(XGBoost ``save_model`` UBJSON + JSON params, never pickle) and ``registry.duckdb`` with the
record, queryable in SQL::

    select model_name, version, status, cutoff_date, status_reason from model_versions;

Writes go through :func:`shopflow.warehouse.connect` (exclusive file lock) inside one
transaction, which is what keeps exactly one champion per model name even when two
promotions race.

Artifact folders are recorded relative to ``$SHOPFLOW_HOME`` (``models/<model>/<version>``),
so a copied or restored home scores with its own files; rows written with absolute paths
by older versions are rewritten on first use.

``serving`` records, per run date and model, the version that scored it, so that a rerun or
a backfill of a date scores with the version that served it (see :meth:`Registry.serving_for`
for the rules when a date never ran).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.warehouse import connect

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

STATUSES = ("challenger", "champion", "retired", "rolled_back")


class ArtifactIntegrityError(RuntimeError):
    """A model artifact does not match the checksum recorded when it was registered."""


@dataclass(frozen=True)
class ModelVersion:
    model_name: str
    version: str
    status: str
    cutoff_date: dt.date
    artifact_dir: Path
    sha256: str
    params: dict
    feature_schema: list[str]
    metrics: dict
    data_fingerprint: dict
    code_version: str | None
    created_by: str
    created_at: dt.datetime
    status_reason: str | None


def artifact_checksum(folder: Path) -> str:
    """SHA-256 over the artifact files of a version (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def code_version(project_root: Path) -> str | None:
    """The git commit of the code that trains, when the checkout is a git repository."""
    try:
        out = subprocess.run(
            ["git", "-C", str(project_root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _ensure_schema(con) -> None:
    con.execute(
        """
        create table if not exists model_versions (
            model_name varchar not null,
            version varchar not null,
            status varchar not null,
            cutoff_date date not null,
            artifact_dir varchar not null,
            sha256 varchar not null,
            params json,
            feature_schema json,
            metrics json,
            data_fingerprint json,
            code_version varchar,
            created_by varchar not null,
            created_at timestamp not null,
            status_reason varchar,
            status_changed_at timestamp,
            primary key (model_name, version)
        )
        """
    )
    con.execute(
        """
        create table if not exists evaluations (
            evaluated_at timestamp not null,
            retrain_date date not null,
            model_name varchar not null,
            challenger_version varchar not null,
            champion_version varchar,
            candidate varchar not null,
            fold varchar not null,
            metric varchar not null,
            value double
        )
        """
    )
    con.execute(
        """
        create table if not exists serving (
            run_date date not null,
            model_name varchar not null,
            version varchar not null,
            recorded_at timestamp not null,
            primary key (run_date, model_name)
        )
        """
    )
    # homes from before relative paths: artifact folders always live at models/<name>/<version>
    con.execute(
        "update model_versions set artifact_dir = 'models/' || model_name || '/' || version "
        "where artifact_dir like '/%'"
    )
    con.execute(
        """
        create table if not exists registry_events (
            event_at timestamp not null,
            model_name varchar not null,
            version varchar not null,
            action varchar not null,
            actor varchar not null,
            reason varchar
        )
        """
    )


def _row_to_version(row, home: Path) -> ModelVersion:
    (
        name,
        version,
        status,
        cutoff,
        artifact_dir,
        sha,
        params,
        schema,
        metrics,
        fingerprint,
        code,
        created_by,
        created_at,
        reason,
    ) = row
    return ModelVersion(
        model_name=name,
        version=version,
        status=status,
        cutoff_date=cutoff,
        artifact_dir=home / artifact_dir,
        sha256=sha,
        params=json.loads(params) if params else {},
        feature_schema=json.loads(schema) if schema else [],
        metrics=json.loads(metrics) if metrics else {},
        data_fingerprint=json.loads(fingerprint) if fingerprint else {},
        code_version=code,
        created_by=created_by,
        created_at=created_at,
        status_reason=reason,
    )


_COLUMNS = (
    "model_name, version, status, cutoff_date, artifact_dir, sha256, params, feature_schema, "
    "metrics, data_fingerprint, code_version, created_by, created_at, status_reason"
)


def _require_version(con, model_name: str, version: str) -> None:
    found = con.execute(
        "select 1 from model_versions where model_name = ? and version = ?",
        [model_name, version],
    ).fetchone()
    if found is None:
        raise KeyError(f"{model_name} has no version {version}")


class Registry:
    """The registry of one Shopflow home."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.registry_path

    def _connect(self):
        return connect(self.settings, self.path)

    # -- writing --------------------------------------------------------------------------
    def register(
        self,
        model_name: str,
        staged_dir: Path,
        *,
        cutoff_date: dt.date,
        params: dict,
        feature_schema: list[str],
        metrics: dict,
        data_fingerprint: dict,
        created_by: str,
    ) -> ModelVersion:
        """Move a staged artifact folder into the registry as a new challenger.

        The version id is derived from the cutoff and the artifact checksum, so registering
        the same training result twice (a rerun) returns the existing version unchanged.
        """
        sha = artifact_checksum(staged_dir)
        version = f"{cutoff_date:%Y%m%d}-{sha[:10]}"
        target = self.settings.models_dir / model_name / version
        existing = self.get(model_name, version)
        if existing is not None:
            shutil.rmtree(staged_dir, ignore_errors=True)
            return existing
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staged_dir), target)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self._connect() as con:
            _ensure_schema(con)
            con.execute(
                f"insert into model_versions ({_COLUMNS}, status_changed_at) "
                "values (?, ?, 'challenger', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?)",
                [
                    model_name,
                    version,
                    cutoff_date,
                    target.relative_to(self.settings.home).as_posix(),
                    sha,
                    json.dumps(params, sort_keys=True, default=str),
                    json.dumps(feature_schema),
                    json.dumps(metrics, sort_keys=True, default=float),
                    json.dumps(data_fingerprint, sort_keys=True, default=str),
                    code_version(self.settings.project_root),
                    created_by,
                    now,
                    now,
                ],
            )
            self._event(con, model_name, version, "registered", created_by, None)
        return self.get(model_name, version)

    def promote(self, model_name: str, version: str, *, actor: str, reason: str) -> None:
        """Make ``version`` the champion; the previous champion is retired. One transaction."""
        with self._connect() as con:
            _ensure_schema(con)
            con.execute("begin transaction")
            try:
                _require_version(con, model_name, version)
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                con.execute(
                    "update model_versions set status = 'retired', status_reason = ?, "
                    "status_changed_at = ? "
                    "where model_name = ? and status = 'champion' and version <> ?",
                    [f"replaced by {version}", now, model_name, version],
                )
                con.execute(
                    "update model_versions set status = 'champion', status_reason = ?, "
                    "status_changed_at = ? where model_name = ? and version = ?",
                    [reason, now, model_name, version],
                )
                self._event(con, model_name, version, "promoted", actor, reason)
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise

    def set_status(self, model_name: str, version: str, status: str, *, actor: str, reason: str):
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        with self._connect() as con:
            _ensure_schema(con)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            con.execute(
                "update model_versions set status = ?, status_reason = ?, status_changed_at = ? "
                "where model_name = ? and version = ?",
                [status, reason, now, model_name, version],
            )
            self._event(con, model_name, version, status, actor, reason)

    def rollback(
        self, model_name: str, failed_version: str, to_version: str, *, actor: str, reason: str
    ) -> None:
        """Mark ``failed_version`` rolled_back and make ``to_version`` champion, atomically.

        Same lock and transaction as :meth:`promote`, so readers never see zero or two
        champions in between.
        """
        if failed_version == to_version:
            raise ValueError(f"{model_name}: cannot roll {failed_version} back to itself")
        with self._connect() as con:
            _ensure_schema(con)
            con.execute("begin transaction")
            try:
                for version in (failed_version, to_version):
                    _require_version(con, model_name, version)
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                con.execute(
                    "update model_versions set status = 'rolled_back', status_reason = ?, "
                    "status_changed_at = ? where model_name = ? and version = ?",
                    [reason, now, model_name, failed_version],
                )
                # any other champion (there should be none) steps down too: one champion
                con.execute(
                    "update model_versions set status = 'retired', status_reason = ?, "
                    "status_changed_at = ? where model_name = ? and status = 'champion' "
                    "and version <> ?",
                    [f"replaced by {to_version} (rollback)", now, model_name, to_version],
                )
                con.execute(
                    "update model_versions set status = 'champion', status_reason = ?, "
                    "status_changed_at = ? where model_name = ? and version = ?",
                    [f"restored after rollback of {failed_version}", now, model_name, to_version],
                )
                self._event(con, model_name, failed_version, "rolled_back", actor, reason)
                self._event(
                    con, model_name, to_version, "restored", actor, f"rollback of {failed_version}"
                )
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise

    def record_decision(
        self, model_name: str, version: str, *, action: str, actor: str, reason: str
    ) -> None:
        """Put a decision that changes no status (e.g. ``kept_challenger``) on record."""
        with self._connect() as con:
            _ensure_schema(con)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            con.execute(
                "update model_versions set status_reason = ?, status_changed_at = ? "
                "where model_name = ? and version = ?",
                [reason, now, model_name, version],
            )
            self._event(con, model_name, version, action, actor, reason)

    def record_evaluation(
        self,
        model_name: str,
        challenger_version: str,
        champion_version: str | None,
        retrain_date: dt.date,
        evaluation: dict,
    ) -> None:
        """Store a fold evaluation (``FoldEvaluation.as_dict()``): one row per candidate, fold
        (or ``mean``) and metric, and the summary in the challenger's ``metrics`` record."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = []
        folds = list(zip(evaluation["folds"], evaluation["per_fold"], strict=True))
        for fold, results in [*folds, ("mean", evaluation["mean"])]:
            for candidate, scores in results.items():
                for metric, value in scores.items():
                    number = None if value is None else float(value)
                    rows.append(
                        (now, retrain_date, model_name, challenger_version, champion_version,
                         candidate, fold, metric, number)
                    )  # fmt: skip
        with self._connect() as con:
            _ensure_schema(con)
            con.execute("begin transaction")
            try:
                con.execute(
                    "delete from evaluations where model_name = ? and challenger_version = ? "
                    "and retrain_date = ?",
                    [model_name, challenger_version, retrain_date],
                )
                if rows:
                    con.executemany(
                        "insert into evaluations values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                    )
                current = con.execute(
                    "select metrics from model_versions where model_name = ? and version = ?",
                    [model_name, challenger_version],
                ).fetchone()
                merged = json.loads(current[0]) if current and current[0] else {}
                merged["fold_evaluation"] = {
                    "retrain_date": retrain_date.isoformat(),
                    "champion_version": champion_version,
                    **evaluation,
                }
                con.execute(
                    "update model_versions set metrics = ? where model_name = ? and version = ?",
                    [
                        json.dumps(merged, sort_keys=True, default=float),
                        model_name,
                        challenger_version,
                    ],
                )
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise

    @staticmethod
    def _event(con, model_name, version, action, actor, reason) -> None:
        con.execute(
            "insert into registry_events values (?, ?, ?, ?, ?, ?)",
            [
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
                model_name,
                version,
                action,
                actor,
                reason,
            ],
        )

    # -- reading --------------------------------------------------------------------------
    def _query(self, where: str, args: list) -> list[ModelVersion]:
        if not self.path.exists():
            return []
        with self._connect() as con:
            _ensure_schema(con)
            rows = con.execute(
                f"select {_COLUMNS} from model_versions where {where} "
                "order by model_name, created_at, version",
                args,
            ).fetchall()
        return [_row_to_version(r, self.settings.home) for r in rows]

    def get(self, model_name: str, version: str) -> ModelVersion | None:
        found = self._query("model_name = ? and version = ?", [model_name, version])
        return found[0] if found else None

    def champion(self, model_name: str) -> ModelVersion | None:
        found = self._query("model_name = ? and status = 'champion'", [model_name])
        if len(found) > 1:  # guarded by promote(); kept as a loud invariant check
            raise RuntimeError(f"{model_name} has {len(found)} champions; expected one")
        return found[0] if found else None

    def events(self, model_name: str | None = None) -> list[dict]:
        """The registry's decision log, oldest first."""
        if not self.path.exists():
            return []
        with self._connect() as con:
            _ensure_schema(con)
            frame = con.execute(
                "select event_at, model_name, version, action, actor, reason from registry_events "
                "where ? is null or model_name = ? order by event_at, rowid",
                [model_name, model_name],
            ).fetchall()
        keys = ("event_at", "model_name", "version", "action", "actor", "reason")
        return [dict(zip(keys, row, strict=True)) for row in frame]

    def previous_champion(self, model_name: str) -> ModelVersion | None:
        """The version that was champion before the current one (not itself rolled back)."""
        current = self.champion(model_name)
        seen = []
        for event in reversed(self.events(model_name)):
            if event["action"] in ("promoted", "restored") and (
                current is None or event["version"] != current.version
            ):
                seen.append(event["version"])
        for version in seen:
            candidate = self.get(model_name, version)
            if candidate is not None and candidate.status != "rolled_back":
                return candidate
        return None

    # -- which version serves which run date ------------------------------------------------
    def record_serving(self, model_name: str, run_date: dt.date, version: str) -> None:
        """Record that ``version`` scored ``model_name`` for ``run_date`` (replaces a rerun's)."""
        with self._connect() as con:
            _ensure_schema(con)
            con.execute(
                "insert or replace into serving values (?, ?, ?, ?)",
                [run_date, model_name, version, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            )

    def served(self, model_name: str) -> dict[dt.date, str]:
        """Run date -> the version that scored it, for every recorded date."""
        if not self.path.exists():
            return {}
        with self._connect() as con:
            _ensure_schema(con)
            rows = con.execute(
                "select run_date, version from serving where model_name = ? order by run_date",
                [model_name],
            ).fetchall()
        return dict(rows)

    def serving_for(self, model_name: str, run_date: dt.date) -> tuple[ModelVersion | None, str]:
        """The version that should score ``run_date``, and the rule that chose it.

        1. the version recorded as serving that date (a rerun, or a backfill of a date that
           ran), unless it was rolled back since;
        2. the current champion when no later date has been scored (the normal nightly run);
        3. for a past date that never ran: the version that served the latest earlier date
           (the champion of that night, still serving on the next one);
        4. for a past date before any recorded one: the newest version trained with a cutoff
           on or before the date that ever served; if none, the current champion, and the rule
           says that it was trained on data after the date (the night of that date would have
           trained a first model of its own, which a backfill does not repeat).
        Versions rolled back are never chosen by rules 1, 3 and 4.
        """
        served = self.served(model_name)
        known = {v.version: v for v in self.versions(model_name)}
        usable = {
            d: known[v]
            for d, v in served.items()
            if v in known and known[v].status != "rolled_back"
        }
        if run_date in usable:
            return usable[run_date], f"served {run_date} before (recorded)"
        champion = next((v for v in known.values() if v.status == "champion"), None)
        if not any(d > run_date for d in served):
            return champion, "the current champion (no later date has been scored)"
        earlier = [d for d in usable if d < run_date]
        if earlier:
            day = max(earlier)
            return usable[day], f"served {day}, the latest earlier date"
        trained_before = [v for v in usable.values() if v.cutoff_date <= run_date]
        if trained_before:
            chosen = max(trained_before, key=lambda v: (v.cutoff_date, v.created_at))
            return chosen, f"served later dates, trained up to {chosen.cutoff_date} (<= {run_date})"
        cutoff = champion.cutoff_date if champion else None
        return champion, (
            f"no version trained up to {run_date} ever served: the current champion, trained up "
            f"to {cutoff}, which is after that date"
        )

    def versions(self, model_name: str | None = None) -> list[ModelVersion]:
        if model_name is None:
            return self._query("true", [])
        return self._query("model_name = ?", [model_name])

    def verified_artifact_dir(self, version: ModelVersion) -> Path:
        """The version's artifact folder after checking its checksum; refuses a mismatch."""
        if not version.artifact_dir.is_dir():
            raise ArtifactIntegrityError(
                f"{version.model_name} {version.version}: artifact folder "
                f"{version.artifact_dir} is missing"
            )
        actual = artifact_checksum(version.artifact_dir)
        if actual != version.sha256:
            raise ArtifactIntegrityError(
                f"{version.model_name} {version.version}: artifact checksum {actual[:12]}… "
                f"does not match the registered {version.sha256[:12]}…; refusing to score with it"
            )
        return version.artifact_dir
