"""A client of Reshard's HTTP API (rows, conditional writes, batches, pages, admin) over httpx.

Rows are JSON objects (dicts). A row's entity tag is its version: `get` returns it, and a
write that names it (`if_match=version`) replaces only that version; a write with
`if_none_match=True` only creates. Requests the router answers 503 (a range cutting over, a
layout switching) are retried with exponential backoff and jitter, never sooner than the
answer's Retry-After, within `retry_budget` seconds; a write only when the answer's code says
that nothing was written, so a retried conditional write never applies twice.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, Union
from urllib.parse import quote

import httpx

__all__ = [
    "ReshardClient",
    "ReshardError",
    "PreconditionFailed",
    "Row",
    "WriteResult",
    "Put",
    "Delete",
    "Page",
]

# 503 codes whose request the router did not apply: safe to send a write again.
NOT_WRITTEN = frozenset({"range_moving", "layout_moving", "key_contended"})
MAX_BATCH_ITEMS = 100


class ReshardError(Exception):
    """The router answered with an error (status, code, message), or did not answer (status 0)."""

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[int] = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class PreconditionFailed(ReshardError):
    """412: the row's version did not satisfy the write's condition; nothing was written."""


@dataclass(frozen=True)
class Row:
    pk: str
    version: int
    shard: str
    value: dict

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@dataclass(frozen=True)
class WriteResult:
    pk: str
    version: int
    shard: str
    generation: int
    created: bool


@dataclass(frozen=True)
class Put:
    """A batch item: upsert `value` as row `pk`, with an optional condition."""

    pk: str
    value: Any
    if_match: Optional[int] = None
    if_none_match: bool = False


@dataclass(frozen=True)
class Delete:
    """A batch item: delete row `pk` (with its shard key when the table is not placed by pk)."""

    pk: str
    shard_key: Optional[str] = None
    if_match: Optional[int] = None


@dataclass(frozen=True)
class Page:
    rows: list
    next_cursor: Optional[str]


def _error(response: httpx.Response) -> ReshardError:
    code, message = f"http_{response.status_code}", response.reason_phrase
    try:
        body = response.json()["error"]
        code, message = body["code"], body["message"]
    except Exception:
        pass
    retry_after = response.headers.get("Retry-After")
    kind = PreconditionFailed if response.status_code == 412 else ReshardError
    return kind(response.status_code, code, message, int(retry_after) if retry_after and retry_after.isdigit() else None)


def _item_error(item: dict) -> ReshardError:
    error = item.get("error") or {}
    kind = PreconditionFailed if item.get("status") == 412 else ReshardError
    return kind(item.get("status", 0), error.get("code", "unknown"), error.get("message", ""), item.get("retry_after"))


def _row(body: dict) -> Row:
    return Row(pk=body["pk"], version=body["version"], shard=body["shard"], value=body["row"])


def _conditions(if_match: Optional[int], if_none_match: bool) -> dict:
    headers = {}
    if if_match is not None:
        headers["If-Match"] = f'"{int(if_match)}"'
    if if_none_match:
        headers["If-None-Match"] = "*"
    return headers


def _encode(value: Any) -> bytes:
    """A row's bytes: `bytes`/`str` are sent as they are (stored byte for byte), anything else as JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class ReshardClient:
    """A client of one Reshard router. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        url: str,
        admin_token: Optional[str] = None,
        data_token: Optional[str] = None,
        verify: Union[bool, str] = True,
        timeout: float = 30.0,
        retry_budget: float = 20.0,
        initial_backoff: float = 0.02,
        max_backoff: float = 1.0,
    ):
        if not (url.startswith("http://") or url.startswith("https://")):
            raise ValueError(f"the URL must look like http://host:port or https://host:port; got {url!r}")
        self._http = httpx.Client(base_url=url.rstrip("/"), verify=verify, timeout=timeout, follow_redirects=False)
        self.admin_token = admin_token
        self.data_token = data_token
        self.retry_budget = retry_budget
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff

    def __enter__(self) -> "ReshardClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- rows ---------------------------------------------------------------------------------

    def get(self, table: str, pk: str, shard_key: Optional[str] = None) -> Optional[Row]:
        """Row `pk`, or None when it does not exist."""
        response = self._send("GET", self._row_path(table, pk), params=self._shard(shard_key), access="data", safe=True)
        if response.status_code == 404 and _code(response) == "not_found":
            return None
        self._require(response)
        return _row(response.json())

    def put(
        self, table: str, pk: str, value: Any, if_match: Optional[int] = None, if_none_match: bool = False
    ) -> WriteResult:
        """Upserts row `pk`; with `if_match` only over that version, with `if_none_match` only when absent."""
        response = self._send(
            "PUT",
            self._row_path(table, pk),
            headers={"Content-Type": "application/json", **_conditions(if_match, if_none_match)},
            content=_encode(value),
            access="data",
            safe=False,
        )
        self._require(response)
        body = response.json()
        return WriteResult(body["pk"], body["version"], body["shard"], body["generation"], response.status_code == 201)

    def delete(self, table: str, pk: str, shard_key: Optional[str] = None, if_match: Optional[int] = None) -> bool:
        """Deletes row `pk`; False when there was none."""
        response = self._send(
            "DELETE",
            self._row_path(table, pk),
            params=self._shard(shard_key),
            headers=_conditions(if_match, False),
            access="data",
            safe=False,
        )
        if response.status_code == 404 and _code(response) == "not_found":
            return False
        self._require(response)
        return True

    def update(
        self,
        table: str,
        pk: str,
        change: Callable[[Optional[dict]], Optional[Any]],
        shard_key: Optional[str] = None,
        attempts: int = 64,
    ) -> Optional[WriteResult]:
        """Read-modify-write: writes `change(value)` only over the version read, again until no other
        writer came between (at most `attempts` times). `change` gets None for an absent row (the
        write then only creates) and returns None to leave the row alone."""
        last: Optional[ReshardError] = None
        for _ in range(max(1, attempts)):
            current = self.get(table, pk, shard_key)
            value = change(current.value if current else None)
            if value is None:
                return None
            try:
                if current is None:
                    return self.put(table, pk, value, if_none_match=True)
                return self.put(table, pk, value, if_match=current.version)
            except PreconditionFailed as error:
                last = error
        assert last is not None
        raise last

    def batch_get(self, table: str, keys: Sequence[Union[str, tuple]]) -> list:
        """Rows for `keys` (a pk, or (pk, shard_key)), in order; None where not found."""
        items = []
        for key in keys:
            pk, shard_key = (key, None) if isinstance(key, str) else key
            items.append({"pk": pk, **({"shard_key": shard_key} if shard_key is not None else {})})
        results: list = [None] * len(items)

        def round(pending: list) -> list:
            answers = self._batch(table, "batch_get", json.dumps({"items": [items[i] for i in pending]}).encode())
            for index, answer in zip(pending, answers):
                if answer.get("status") == 200:
                    results[index] = _row(answer)
                elif answer.get("status") == 404 and (answer.get("error") or {}).get("code") == "not_found":
                    results[index] = None
                else:
                    results[index] = _item_error(answer)
            return answers

        self._retry_items(len(items), round, safe=True)
        for result in results:
            if isinstance(result, ReshardError):
                raise result
        return results

    def batch_write(self, table: str, items: Sequence[Union[Put, Delete]]) -> list:
        """Writes `items` (each primary key at most once), grouped by shard on the server; a
        `WriteResult` or a `ReshardError` per item, in order. Items refused without being written
        (503 range_moving, …) are sent again."""
        encoded = [self._item(item) for item in items]
        results: list = [None] * len(items)

        def round(pending: list) -> list:
            body = b'{"items":[' + b",".join(encoded[i] for i in pending) + b"]}"
            answers = self._batch(table, "batch_write", body)
            for index, answer in zip(pending, answers):
                if answer.get("status") in (200, 201):
                    results[index] = WriteResult(
                        answer["pk"], answer["version"], answer["shard"], answer["generation"], answer["status"] == 201
                    )
                else:
                    results[index] = _item_error(answer)
            return answers

        self._retry_items(len(items), round, safe=False)
        return results

    def list_page(self, table: str, shard_key: str, limit: int = 100, cursor: Optional[str] = None) -> Page:
        """One page of the live rows sharing `shard_key`, after `cursor`."""
        params = {"shard_key": shard_key, "limit": str(limit)}
        if cursor is not None:
            params["cursor"] = cursor
        response = self._send("GET", f"/v1/tables/{quote(table, safe='')}/rows", params=params, access="data", safe=True)
        self._require(response)
        body = response.json()
        return Page([_row(row) for row in body["rows"]], body.get("next_cursor"))

    def list_all(self, table: str, shard_key: str, page_size: int = 100) -> Iterator[Row]:
        """Every live row sharing `shard_key`: each row that lives through the listing comes once,
        also while its range migrates."""
        cursor = None
        while True:
            page = self.list_page(table, shard_key, page_size, cursor)
            yield from page.rows
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- admin --------------------------------------------------------------------------------

    def create_table(self, name: str, primary_key: str, shard_key: Optional[str] = None) -> dict:
        body = {"name": name, "primary_key": primary_key, **({"shard_key": shard_key} if shard_key else {})}
        return self._admin("POST", "/v1/tables", body)

    def add_shard(self, shard_id: str, url: Optional[str] = None) -> dict:
        return self._admin("POST", "/v1/shards", {"id": shard_id, **({"url": url} if url else {})})

    def cluster(self) -> dict:
        return self._admin("GET", "/v1/cluster")

    def create_migration(self, request: dict) -> dict:
        return self._admin("POST", "/v1/migrations", request)

    def migration(self, migration_id: str) -> dict:
        return self._admin("GET", f"/v1/migrations/{quote(migration_id, safe='')}")

    def command(self, migration_id: str, command: str) -> dict:
        if command not in ("approve", "pause", "resume", "rollback"):
            raise ValueError(f"unknown command {command!r}")
        return self._admin("POST", f"/v1/migrations/{quote(migration_id, safe='')}/{command}")

    # -- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _row_path(table: str, pk: str) -> str:
        return f"/v1/tables/{quote(table, safe='')}/rows/{quote(pk, safe='')}"

    @staticmethod
    def _shard(shard_key: Optional[str]) -> dict:
        return {"shard_key": shard_key} if shard_key is not None else {}

    @staticmethod
    def _item(item: Union[Put, Delete]) -> bytes:
        if isinstance(item, Put):
            head: dict = {"op": "put", "pk": item.pk}
            if item.if_match is not None:
                head["if_match"] = f'"{int(item.if_match)}"'
            if item.if_none_match:
                head["if_none_match"] = "*"
            # The row goes in as its own bytes, so that what is stored is exactly what was encoded.
            return json.dumps(head, ensure_ascii=False).encode()[:-1] + b',"row":' + _encode(item.value) + b"}"
        body: dict = {"op": "delete", "pk": item.pk}
        if item.shard_key is not None:
            body["shard_key"] = item.shard_key
        if item.if_match is not None:
            body["if_match"] = f'"{int(item.if_match)}"'
        return json.dumps(body, ensure_ascii=False).encode()

    def _admin(self, method: str, path: str, body: Optional[dict] = None) -> dict:
        response = self._send(
            method,
            path,
            headers={"Content-Type": "application/json"} if body is not None else {},
            content=json.dumps(body).encode() if body is not None else None,
            access="admin",
            safe=method == "GET",
        )
        self._require(response)
        return response.json()

    def _batch(self, table: str, operation: str, body: bytes) -> list:
        response = self._send(
            "POST",
            f"/v1/tables/{quote(table, safe='')}/rows:{operation}",
            headers={"Content-Type": "application/json"},
            content=body,
            access="data",
            safe=True,
        )
        self._require(response)
        return response.json()["items"]

    def _retry_items(self, count: int, round: Callable[[list], list], safe: bool) -> None:
        pending = list(range(count))
        deadline = time.monotonic() + self.retry_budget
        backoff = self.initial_backoff
        while pending:
            again, wait = [], 0.0
            for start in range(0, len(pending), MAX_BATCH_ITEMS):
                chunk = pending[start : start + MAX_BATCH_ITEMS]
                for index, answer in zip(chunk, round(chunk)):
                    code = (answer.get("error") or {}).get("code")
                    if answer.get("status") == 503 and (safe or code in NOT_WRITTEN):
                        again.append(index)
                        wait = max(wait, float(answer.get("retry_after") or 0))
            pause = max(backoff * (1 + random.random() / 2), wait)
            if not again or time.monotonic() + pause >= deadline:
                return
            time.sleep(pause)
            backoff = min(backoff * 2, self.max_backoff)
            pending = again

    def _send(self, method: str, path: str, access: str, safe: bool, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.admin_token if access == "admin" else self.data_token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        deadline = time.monotonic() + self.retry_budget
        backoff = self.initial_backoff
        transport_retries = 2
        while True:
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as error:
                # A write whose answer was lost may have happened: only a read goes again.
                if not safe or transport_retries == 0 or time.monotonic() + backoff >= deadline:
                    raise ReshardError(0, "transport", str(error)) from error
                transport_retries -= 1
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if response.status_code != 503 or not (safe or _code(response) in NOT_WRITTEN):
                return response
            retry_after = response.headers.get("Retry-After", "0")
            pause = max(backoff * (1 + random.random() / 2), float(retry_after) if retry_after.isdigit() else 0.0)
            if time.monotonic() + pause >= deadline:
                return response
            time.sleep(pause)
            backoff = min(backoff * 2, self.max_backoff)

    @staticmethod
    def _require(response: httpx.Response) -> None:
        if not 200 <= response.status_code < 300:
            raise _error(response)


def _code(response: httpx.Response) -> Optional[str]:
    try:
        return response.json()["error"]["code"]
    except Exception:
        return None
