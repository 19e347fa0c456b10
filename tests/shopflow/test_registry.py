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
