from __future__ import annotations

import datetime as dt
import threading

import pytest

from shopflow.registry import ArtifactIntegrityError, Registry

CUTOFF = dt.date(2025, 5, 1)


def _register(registry: Registry, tmp_path, payload: bytes, name: str = "demand_forecast"):
    staged = tmp_path / f"staged-{payload.hex()}"
    staged.mkdir()
    (staged / "model.ubj").write_bytes(payload)
    return registry.register(
        name,
        staged,
        cutoff_date=CUTOFF,
        params={"depth": 3},
        feature_schema=["a", "b"],
        metrics={"results": {"model": {"weekly_wape": 0.5}}},
        data_fingerprint={"rows": 10},
        created_by="test",
    )


def test_register_is_idempotent_for_the_same_artifact(settings, tmp_path):
    registry = Registry(settings)
    first = _register(registry, tmp_path, b"one")
    again = _register(registry, tmp_path, b"one")
    assert first.version == again.version
    assert first.status == "challenger"
    assert len(registry.versions("demand_forecast")) == 1
    assert first.version.startswith("20250501-")


def test_promote_retires_the_previous_champion(settings, tmp_path):
    registry = Registry(settings)
    old = _register(registry, tmp_path, b"old")
    new = _register(registry, tmp_path, b"new")
    registry.promote("demand_forecast", old.version, actor="test", reason="first")
    registry.promote("demand_forecast", new.version, actor="test", reason="better")
    statuses = {v.version: v.status for v in registry.versions("demand_forecast")}
    assert statuses == {old.version: "retired", new.version: "champion"}
    assert registry.champion("demand_forecast").status_reason == "better"


def test_racing_promotions_leave_exactly_one_champion(settings, tmp_path):
    registry = Registry(settings)
    versions = [_register(registry, tmp_path, bytes([i])).version for i in range(4)]
    threads = [
        threading.Thread(
            target=registry.promote,
            args=("demand_forecast", v),
            kwargs={"actor": "race", "reason": v},
        )
        for v in versions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    champions = [v for v in registry.versions("demand_forecast") if v.status == "champion"]
    assert len(champions) == 1


def test_corrupted_artifact_is_refused(settings, tmp_path):
    registry = Registry(settings)
    version = _register(registry, tmp_path, b"good")
    assert registry.verified_artifact_dir(version) == version.artifact_dir
    (version.artifact_dir / "model.ubj").write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="does not match the registered"):
        registry.verified_artifact_dir(version)


def _promote_repeatedly(settings, version: str, times: int) -> None:
    registry = Registry(settings)
    for _ in range(times):
        registry.promote("demand_forecast", version, actor="race", reason=version)
        assert registry.champion("demand_forecast") is not None


def test_promotions_racing_across_processes_leave_exactly_one_champion(settings, tmp_path):
    import multiprocessing

    registry = Registry(settings)
    versions = [_register(registry, tmp_path, bytes([i])).version for i in range(2)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_promote_repeatedly, args=(settings, v, 5)) for v in versions]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    statuses = sorted(v.status for v in registry.versions("demand_forecast"))
    assert statuses == ["champion", "retired"]
    promoted = [e for e in registry.events("demand_forecast") if e["action"] == "promoted"]
    assert len(promoted) == 10


def test_rollback_restores_the_given_version_in_one_step(settings, tmp_path):
    registry = Registry(settings)
    old = _register(registry, tmp_path, b"old")
    new = _register(registry, tmp_path, b"new")
    registry.promote("demand_forecast", old.version, actor="test", reason="first")
    registry.promote("demand_forecast", new.version, actor="test", reason="second")
    assert registry.previous_champion("demand_forecast").version == old.version
    registry.rollback("demand_forecast", new.version, old.version, actor="test", reason="NaN")
    statuses = {v.version: (v.status, v.status_reason) for v in registry.versions()}
    assert statuses == {
        old.version: ("champion", f"restored after rollback of {new.version}"),
        new.version: ("rolled_back", "NaN"),
    }


def test_a_copied_home_scores_with_its_own_artifacts_and_refuses_a_corrupted_one(
    settings, tmp_path
):
    import shutil

    from tests.conftest import make_settings

    version = _register(Registry(settings), tmp_path, b"good")
    copy = make_settings(shutil.copytree(settings.home, tmp_path / "elsewhere", symlinks=True))
    copied = Registry(copy).get("demand_forecast", version.version)
    assert copied.artifact_dir == copy.models_dir / "demand_forecast" / version.version
    (version.artifact_dir / "model.ubj").write_bytes(b"the original changed")  # not the copy's
    assert Registry(copy).verified_artifact_dir(copied) == copied.artifact_dir
    (copied.artifact_dir / "model.ubj").write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="does not match the registered"):
        Registry(copy).verified_artifact_dir(copied)


def test_absolute_artifact_paths_of_older_registries_become_relative(settings, tmp_path):
    import duckdb

    version = _register(Registry(settings), tmp_path, b"old")
    con = duckdb.connect(str(settings.registry_path))
    con.execute("update model_versions set artifact_dir = '/somewhere/else/models/x'")
    con.close()
    found = Registry(settings).get("demand_forecast", version.version)
    assert found.artifact_dir == settings.models_dir / "demand_forecast" / version.version
    con = duckdb.connect(str(settings.registry_path), read_only=True)
    stored = con.execute("select artifact_dir from model_versions").fetchone()[0]
    con.close()
    assert stored == f"models/demand_forecast/{version.version}"


def test_serving_for_follows_the_registry_history(settings, tmp_path):
    registry = Registry(settings)
    name = "demand_forecast"
    old = _register(registry, tmp_path, b"v-old")
    new = _register(registry, tmp_path, b"v-new")
    day = dt.date(2025, 5, 10)
    assert registry.serving_for(name, day)[0] is None  # no champion yet
    registry.promote(name, old.version, actor="test", reason="first")
    for offset in (0, 1, 2):
        registry.record_serving(name, day + dt.timedelta(days=offset), old.version)
    registry.promote(name, new.version, actor="test", reason="better")
    registry.record_serving(name, day + dt.timedelta(days=5), new.version)

    def chosen(d):
        return registry.serving_for(name, d)[0].version

    assert chosen(day + dt.timedelta(days=1)) == old.version  # recorded
    assert chosen(day + dt.timedelta(days=3)) == old.version  # never ran: the night before's
    assert chosen(day + dt.timedelta(days=6)) == new.version  # the newest date: champion
    # before any recorded date: the newest that served, trained up to the date (CUTOFF)
    assert chosen(CUTOFF) in {old.version, new.version}
    version, rule = registry.serving_for(name, CUTOFF - dt.timedelta(days=1))
    assert "after that date" in rule and version.version == new.version
    registry.rollback(name, new.version, old.version, actor="test", reason="bad")
    assert chosen(day + dt.timedelta(days=5)) == old.version  # rolled back: never chosen
