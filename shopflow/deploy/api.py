"""A small client of the local Airflow REST API (``/api/v2``), standard library only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from shopflow.deploy.env import ADMIN_USER, admin_password, api_root

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings


class AirflowUnavailableError(RuntimeError):
    """The API server does not answer."""


class ApiError(RuntimeError):
    """The API answered with an error status."""

    def __init__(self, status: int, method: str, path: str, detail: Any):
        super().__init__(f"{method} {path}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


IDEMPOTENT_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 1.0


class AirflowApi:
    """Requests to one installation's API server, authenticated as ``admin``."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0):
        self.settings = settings
        self.root = api_root(settings)
        self.timeout = timeout
        self._token: str | None = None

    def _send(self, method: str, path: str, body=None, params=None, token=None) -> Any:
        url = self.root + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                detail = json.loads(raw).get("detail", raw.decode(errors="replace"))
            except (ValueError, AttributeError):
                detail = raw.decode(errors="replace")[:500]
            raise ApiError(exc.code, method, path, detail) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise AirflowUnavailableError(
                f"the Airflow API server at {self.root} does not answer ({exc})"
            ) from None
        return json.loads(raw) if raw else None

    def health(self) -> dict:
        """``/api/v2/monitor/health``: status of the metadata database and every component."""
        return self._send("GET", "/api/v2/monitor/health")

    def token(self) -> str:
        """A JWT for ``admin`` from the simple auth manager's ``/auth/token``."""
        if self._token is None:
            body = {"username": ADMIN_USER, "password": admin_password(self.settings)}
            self._token = self._send("POST", "/auth/token", body)["access_token"]
        return self._token

    def request(self, method: str, path: str, body=None, **params) -> Any:
        """An authenticated call to ``/api/v2`` + ``path``; params go to the query string.

        A GET or PATCH (idempotent) answered with a server error is tried again, twice: the
        embedded deployment's SQLite metadata database takes one writer at a time, and a
        write (a run being cleared by another ``shopflow run``) can hold it past the API
        server's lock timeout, which it reports as HTTP 500 "database is locked"."""
        params = {k: v for k, v in params.items() if v is not None}
        attempts = IDEMPOTENT_ATTEMPTS if method in ("GET", "PATCH") else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._authenticated(method, path, body, params)
            except ApiError as exc:
                if exc.status < 500 or attempt == attempts:
                    raise
                time.sleep(RETRY_PAUSE_SECONDS * attempt)
        raise AssertionError("unreachable")

    def _authenticated(self, method: str, path: str, body, params: dict) -> Any:
        try:
            return self._send(method, "/api/v2" + path, body, params, self.token())
        except ApiError as exc:
            if exc.status != 401:
                raise
            self._token = None  # expired: log in again once
            return self._send(method, "/api/v2" + path, body, params, self.token())

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, **params)

    def post(self, path: str, body: dict) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict, **params) -> Any:
        return self.request("PATCH", path, body, **params)
