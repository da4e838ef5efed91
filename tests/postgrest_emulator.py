"""A PostgREST-shaped HTTP server on loopback, for testing the supabase store.

No PostgREST (nor a hosted Supabase project) can run on these machines, so this small
real HTTP server answers the requests the supabase store makes the way Supabase's REST
API does, in front of a real PostgreSQL holding the real migrated schema:

- `apikey` + `Authorization: Bearer` select the database role, as Supabase's gateway and
  PostgREST do: the service key → `service_role`, the anon key → `anon`; each request
  is one transaction on the `authenticator` login with `SET LOCAL ROLE`;
- `GET /rest/v1/<table>?select=…&<col>=eq.<v>&order=<col>.<asc|desc>&limit=N` → a JSON
  array (rows serialised by PostgreSQL's own json, as PostgREST does);
- `POST /rest/v1/<table>` (insert; `Prefer: return=minimal|representation`);
- `POST /rest/v1/rpc/<fn>` with named arguments (the input ones: a `RETURNS TABLE`
  function's columns are not arguments) → the function's result (an array for a set,
  `SETOF` or `RETURNS TABLE`; an object for a composite; a scalar; 204 for void);
- the request's headers in the transaction-local setting `request.headers` (a JSON
  object, lowercased names), as PostgREST sets them;
- errors as PostgREST's JSON body `{code, message, details, hint}` with its status
  mapping (400 for raised errors, 404 for a missing table or function, 409 for a
  conflict, 401/403 for missing rights).

Anything else is answered 400 `PGRST100`, so a store request outside this subset fails
loudly instead of passing by accident.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg import sql

SERVICE_KEY = "test-service-role-key.eyJyb2xlIjoic2VydmljZV9yb2xlIn0"
ANON_KEY = "test-anon-key.eyJyb2xlIjoiYW5vbiJ9"
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
_FILTERS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _status_for(sqlstate: str, role: str) -> int:
    """PostgREST's mapping of SQLSTATE to HTTP status (the codes zapvisor can meet)."""
    if sqlstate in ("23505", "23503"):
        return 409
    if sqlstate in ("42P01", "42883"):
        return 404
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate.startswith(("08", "53")):
        return 503
    if sqlstate.startswith(("25", "40", "54", "55", "57", "58", "XX")):
        return 500
    return 400


def _ident(name: str) -> sql.Identifier:
    if not _IDENT.fullmatch(name):
        raise ApiError(400, "PGRST100", f'"failed to parse" {name!r}')
    return sql.Identifier(name)


class PostgrestEmulator:
    """Serve the REST API of the database at ``dsn`` (an `authenticator`-like login)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.keys = {SERVICE_KEY: "service_role", ANON_KEY: "anon"}
        self.requests: list[tuple[str, str]] = []
        self._pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._local = threading.local()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body are two writes: without this, Nagle + delayed ACK add
            # 40 ms to every keep-alive request (real PostgREST has no such delay)
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                emulator._handle(self, "GET")

            def do_POST(self) -> None:
                emulator._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> PostgrestEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        while not self._pool.empty():
            self._pool.get_nowait().close()

    @contextmanager
    def _transaction(self, role: str) -> Iterator[psycopg.Cursor[Any]]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn, autocommit=True)
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                # as PostgREST does: the request's headers, for SQL to read
                headers = getattr(self._local, "headers", {})
                cur.execute(
                    "SELECT set_config('request.headers', %s, true)", (json.dumps(headers),)
                )
                yield cur
        finally:
            if conn.broken:
                conn.close()
            else:
                self._pool.put(conn)

    # -- the HTTP boundary -----------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        self._local.headers = {k.lower(): v for k, v in req.headers.items()}
        parts = urlsplit(req.path)
        self.requests.append((method, req.path))
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        role = "?"
        try:
            role = self._role(req)
            path = parts.path
            if not path.startswith("/rest/v1/"):
                raise ApiError(404, "PGRST125", f"Invalid path {path}")
            target = path.removeprefix("/rest/v1/")
            params = parse_qsl(parts.query, keep_blank_values=True)
            body = json.loads(raw) if raw else None
            if method == "POST" and target.startswith("rpc/"):
                status, payload = self._rpc(role, target.removeprefix("rpc/"), body or {})
            elif method == "GET":
                status, payload = 200, self._select(role, target, params)
            else:
                prefer = req.headers.get("Prefer", "")
                status, payload = self._insert(role, target, body, "return=minimal" in prefer)
        except ApiError as exc:
            status = exc.status
            payload = json.dumps(
                {"code": exc.code, "details": exc.details, "hint": None, "message": exc.message}
            )
        except psycopg.Error as exc:
            state = exc.sqlstate or "XX000"
            status = _status_for(state, role)
            payload = json.dumps(
                {
                    "code": state,
                    "details": exc.diag.message_detail,
                    "hint": exc.diag.message_hint,
                    "message": exc.diag.message_primary or str(exc),
                }
            )
        data = payload.encode() if payload is not None else b""
        req.send_response(status)
        if data:
            req.send_header("Content-Type", "application/json; charset=utf-8")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _role(self, req: BaseHTTPRequestHandler) -> str:
        key = req.headers.get("apikey")
        if key not in self.keys:
            raise ApiError(401, "401", "Invalid API key", "No API key found in request")
        bearer = (req.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if bearer and bearer not in self.keys:
            raise ApiError(401, "PGRST301", "JWSError JWSInvalidSignature")
        return self.keys[bearer or key]

    def _select(self, role: str, table: str, params: list[tuple[str, str]]) -> str:
        columns: sql.Composable = sql.SQL("*")
        where: list[sql.Composable] = []
        values: list[Any] = []
        order: list[sql.Composable] = []
        limit: sql.Composable = sql.SQL("")
        for key, value in params:
            if key == "select":
                if value != "*":
                    columns = sql.SQL(", ").join(_ident(c) for c in value.split(","))
            elif key == "order":
                for term in value.split(","):
                    col, _, direction = term.partition(".")
                    if direction not in ("", "asc", "desc"):
                        raise ApiError(400, "PGRST100", f"unsupported order {term!r}")
                    order.append(
                        sql.SQL("{} {}").format(_ident(col), sql.SQL(direction.upper() or "ASC"))
                    )
            elif key == "limit":
                limit = sql.SQL(" LIMIT {}").format(sql.Literal(int(value)))
            else:
                op, _, operand = value.partition(".")
                if op not in _FILTERS:
                    raise ApiError(400, "PGRST100", f"unsupported filter {key}={value}")
                where.append(sql.SQL("{} {} %s").format(_ident(key), sql.SQL(_FILTERS[op])))
                values.append(operand)
        query = sql.SQL("SELECT coalesce(json_agg(t), '[]')::text FROM (SELECT {} FROM {}").format(
            columns, _ident(table)
        )
        if where:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
        if order:
            query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
        query += limit + sql.SQL(") t")
        with self._transaction(role) as cur:
            cur.execute(query, values)
            row = cur.fetchone()
        return str(row[0]) if row else "[]"

    def _insert(self, role: str, table: str, body: Any, minimal: bool) -> tuple[int, str | None]:
        rows = body if isinstance(body, list) else [body]
        out = []
        with self._transaction(role) as cur:
            for row in rows:
                if not isinstance(row, dict) or not row:
                    raise ApiError(400, "PGRST102", "Empty or invalid json")
                cols = [_ident(c) for c in row]
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {t} ({c}) SELECT {c} FROM json_populate_record("
                        "NULL::{t}, %s::json) RETURNING to_json({t})::text"
                    ).format(t=_ident(table), c=sql.SQL(", ").join(cols)),
                    (json.dumps(row),),
                )
                got = cur.fetchone()
                out.append(json.loads(got[0]) if got else None)
        return 201, None if minimal else json.dumps(out)

    def _rpc(self, role: str, name: str, args: dict[str, Any]) -> tuple[int, str | None]:
        with self._transaction(role) as cur:
            # the input arguments' names (RETURNS TABLE lists its columns as arguments
            # too); a function without arguments has no proargnames at all
            cur.execute(
                "SELECT array(SELECT a.n FROM unnest(coalesce(p.proargnames, '{}'),"
                " coalesce(p.proargmodes, array_fill('i'::\"char\","
                " array[cardinality(coalesce(p.proargnames, '{}'))])))"
                " WITH ORDINALITY AS a(n, m, i) WHERE a.m IN ('i', 'b', 'v') ORDER BY a.i),"
                " array(SELECT format_type(t, NULL) FROM"
                " unnest(p.proargtypes) AS t), format_type(p.prorettype, NULL),"
                " t.typtype, p.proretset FROM pg_proc p JOIN pg_type t ON t.oid = p.prorettype"
                " WHERE p.proname = %s AND p.pronamespace = 'public'::regnamespace",
                (name,),
            )
            found = cur.fetchone()
            if found is None or set(found[0] or []) != set(args):
                raise ApiError(
                    404,
                    "PGRST202",
                    f"Could not find the function public.{name}({', '.join(sorted(args))}) "
                    "in the schema cache",
                )
            names, types, rettype, typtype, retset = found
            call = sql.SQL("{}({})").format(
                _ident(name),
                sql.SQL(", ").join(
                    sql.SQL("{} => %s::{}").format(_ident(n), sql.SQL(t))
                    for n, t in zip(names, types, strict=True)
                ),
            )
            values = [
                json.dumps(args[n]) if t in ("json", "jsonb") and args[n] is not None else args[n]
                for n, t in zip(names, types, strict=True)
            ]
            if rettype == "void":
                cur.execute(sql.SQL("SELECT ") + call, values)
                return 204, None
            if retset:
                query = sql.SQL("SELECT coalesce(json_agg(r), '[]')::text FROM {} AS r")
            elif typtype == "c":
                query = sql.SQL("SELECT to_json(r)::text FROM {} AS r")
            else:
                query = sql.SQL("SELECT to_json({})::text")
            cur.execute(query.format(call), values)
            row = cur.fetchone()
        return 200, (row[0] if row and row[0] is not None else "null")
