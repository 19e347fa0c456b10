"""A throw-away Shopflow deployment for the browser tests: its own home, port and password.

Started and stopped with the commands on-call uses (`shopflow up`, `shopflow run --date D`,
`shopflow down`); the REST API (token from /auth/token) only checks states the UI shows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shopflow.deploy.services import free_port_block
from shopflow.generator import ShopSpec

# Small enough for a few minutes in CI, large enough for every model and suite to work.
SPEC = ShopSpec(customers=300, products=60, days=150, start=dt.date(2025, 1, 1), seed=3)
ADMIN = "admin"
NIGHTLY = "shopflow_nightly"


@dataclass
class Deployment:
    home: Path
    port: int = field(default_factory=free_port_block)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(10))

    @property
    def url(self) -> str:
        """The UI as `shopflow up` prints it, and as failure messages link to it (the login
        cookie is per host: the browser must use the same one as the links)."""
        return f"http://localhost:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SHOPFLOW_HOME": str(self.home),
            "SHOPFLOW_AIRFLOW_PORT": str(self.port),
            "SHOPFLOW_AIRFLOW_ADMIN_PASSWORD": self.password,
        }

    def shopflow(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """Run a `shopflow` command against this deployment (output captured)."""
        command = [str(Path(sys.executable).with_name("shopflow")), *args]
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def must(self, *args: str, timeout: float = 900) -> str:
        done = self.shopflow(*args, timeout=timeout)
        assert done.returncode == 0, (
            f"shopflow {' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    # -- landing data -------------------------------------------------------------------------
    def order_lines_dir(self, day: dt.date) -> Path:
        return self.home / "landing" / "order_lines" / day.isoformat()

    def hold_back(self, day: dt.date, stash: Path) -> Path:
        """Move ``day``'s order lines out of the landing folder (they arrive later)."""
        target = stash / day.isoformat()
        shutil.move(self.order_lines_dir(day), target)
        return target

    # -- REST API (checks only; the test acts through the UI and the CLI) ----------------------
    def token(self) -> str:
        request = urllib.request.Request(
            f"{self.url}/auth/token",
            data=json.dumps({"username": ADMIN, "password": self.password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]

    def api(self, path: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def run_state(self, run_id: str, dag_id: str = NIGHTLY) -> str:
        return self.api(f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")["state"]

    def task_states(self, run_id: str, dag_id: str = NIGHTLY) -> dict[str, str | None]:
        quoted = urllib.parse.quote(run_id, safe="")
        tis = self.api(f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=200")
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in tis["task_instances"]
        }


def run_id(day: dt.date) -> str:
    """The nightly run of business date ``day`` (`shopflow run --date` names it so)."""
    return f"nightly__{day.isoformat()}"
