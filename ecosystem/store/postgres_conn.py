"""The postgres store's connection: opened on first use, opened again after the server
went away, every error turned into the contract's own (with no password in it), and the
schema's SQL functions called by name (pgfunctions.FunctionCaller).

One connection per store (autocommit; writes in explicit transactions). Prepared
statements are never used server-side, so Supabase's transaction pooler (port 6543)
works.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from ecosystem.errors import ConfigError, StoreError, ZapvisorError
from ecosystem.lease import Fence
from ecosystem.store import pgcommon as pg
from ecosystem.store.pgfunctions import FunctionCaller, Returns
from ecosystem.store.pgwatch import Watchdog

T = TypeVar("T")
TCP_DEFAULTS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
ANSWER_TIMEOUT = 10.0
"""Seconds a call on an open connection may take before the store gives up on the server
(see pgwatch.py): every call is one small SQL function, so only a frozen or drowning
server takes this long, and a runner, the monitor or the TUI must not wait on it forever."""
MIGRATE_TIMEOUT = 120.0
"""A migration waits for another one in progress (an advisory lock) and runs DDL."""
TRANSACTION_POOLER_PORT = "6543"
"""Supabase's transaction pooler (Supavisor; PgBouncer's custom): a server connection
per transaction, so session state such as LISTEN does not outlive one statement."""
FULL_SIGNS = (
    "too many connections",  # a role's or database's CONNECTION LIMIT
    "too many clients",  # max_connections
    "remaining connection slots are reserved",
    "max client connections reached",  # Supavisor
    "no more connections allowed",  # PgBouncer's max_client_conn
)
"""How a server or pooler that answers but is full says so (connection errors carry no
SQLSTATE in psycopg, only the server's text)."""
_SET_FENCE = "SELECT set_config('zapvisor.fence', %s, true)"
_FENCED_ARG = "p_actor"
"""The text argument a fenced call sets the fence in (every function a runner writes
its reports with takes one)."""
_FENCED_VALUE = "substr(set_config('zapvisor.fence', {}, true), 1, 0) || {}"
Conn = psycopg.Connection[DictRow]
Cur = psycopg.Cursor[DictRow]


class PgConnection(FunctionCaller):
    fence: Fence | None = None
    """The lease a runner writes under (base_lease.LeaseMethods.fence)."""

    def __init__(self, dsn: str, *, connect_timeout: float = 5.0) -> None:
        self._dsn = dsn
        try:
            params = pg_conninfo.conninfo_to_dict(dsn)
        except psycopg.Error:
            # psycopg's message quotes the faulty part, which may be the password
            raise ConfigError(
                "ZAPVISOR_DATABASE_URL is not a PostgreSQL connection string: expected "
                "postgresql://user:password@host:5432/dbname (percent-encode special "
                "characters in the password)"
            ) from None
        self._secrets = [str(params.get("password") or ""), dsn]
        self._extra: dict[str, Any] = {}
        if "connect_timeout" not in params:
            self._extra["connect_timeout"] = max(1, round(connect_timeout))
        self._connect_timeout = str(params.get("connect_timeout") or self._extra["connect_timeout"])
        if "application_name" not in params:
            self._extra["application_name"] = "zapvisor"
        # A server that vanished without closing (a dead VPS, a cut link) must not hang
        # a runner or the TUI for the kernel's 2-hour default: notice within ~30 s.
        for option, value in TCP_DEFAULTS.items():
            if option not in params:
                self._extra[option] = value
        host = str(params.get("host") or params.get("hostaddr") or "localhost")
        port = str(params.get("port") or "5432")
        db = str(params.get("dbname") or params.get("user") or "postgres")
        user = str(params.get("user") or "")
        self._where = f"{host}:{port}/{db}"
        self.transaction_pooled = port == TRANSACTION_POOLER_PORT
        self._user = user
        self._lock = threading.RLock()
        self._conn: Conn | None = None
        self._watchdog = Watchdog()

    @property
    def name(self) -> str:
        return f"postgres store at {self._where}"

    # -- plumbing ------------------------------------------------------------------

    def _connect(self) -> Conn:
        try:
            return psycopg.connect(
                self._dsn,
                autocommit=True,
                prepare_threshold=None,
                row_factory=dict_row,
                **self._extra,
            )
        except psycopg.errors.ConnectionTimeout:
            # The server accepted the connection (or the network swallowed it) and
            # never answered: frozen, drowning, or a stuck pooler in front of it.
            raise self._no_answer(f"{self._connect_timeout} s") from None
        except psycopg.Error as exc:
            raise self._unreachable(exc) from None

    def _no_answer(self, within: str) -> StoreError:
        return StoreError(
            f"the {self.name} did not answer within {within}: check that the server (or "
            "its pooler) is running and not overloaded"
        )

    def _unreachable(self, exc: BaseException) -> StoreError:
        cause = pg.redact(
            pg.first_line(str(exc)).removeprefix("connection failed: "), self._secrets
        )
        if any(sign in cause.lower() for sign in FULL_SIGNS):
            # The server answers but is full: every runner holds a connection, so "many
            # sessions on a small plan" lands here; "unreachable" would send the
            # operator after the network.
            return StoreError(
                f"the {self.name} has no connection left for us: {cause} (every runner "
                "holds one: use Supabase's transaction pooler string, port 6543, or raise "
                "the server's max_connections)"
            )
        return StoreError(f"the {self.name} is unreachable: {cause}")

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _run(
        self,
        fn: Callable[[Cur], T],
        *,
        write: bool,
        timeout: float = ANSWER_TIMEOUT,
        alone: bool = False,
        **context: Any,
    ) -> T:
        """Run ``fn`` on the connection (in a transaction when ``write``), within
        ``timeout`` seconds once connected.

        A connection that the server dropped while idle (a restart, a failover) is
        replaced and the call made once more, but only when nothing of it reached the
        server: a write is never sent twice. A call cut short by its bound is not
        retried: the server did not answer, a second try would only double the wait.
        ``alone``: ``fn`` is one statement that sets the fence itself, its own
        transaction (no BEGIN and COMMIT around it).
        """
        with self._lock:
            for attempt in (1, 2):
                reused = self._conn is not None
                if self._conn is None:
                    self._conn = self._connect()
                conn = self._conn
                began = False
                try:
                    with self._watchdog.bound(conn, timeout):
                        if write and not alone:
                            with conn.transaction():
                                began = True
                                with conn.cursor() as cur:
                                    if self.fence is not None:
                                        # read by the fence guard (0009) within this
                                        # transaction only: fine through a pooler too
                                        cur.execute(_SET_FENCE, (self.fence.token,))
                                    return fn(cur)
                        began = True
                        with conn.cursor() as cur:
                            return fn(cur)
                except psycopg.Error as exc:
                    if self._watchdog.fired:
                        self._drop()
                        raise self._no_answer(f"{timeout:g} s") from None
                    if conn.broken or conn.closed:
                        self._drop()
                        if attempt == 1 and reused and (not began or not write):
                            continue
                        raise self._unreachable(exc) from None
                    raise self._error(exc, **context) from None
            raise AssertionError("unreachable")  # pragma: no cover

    def call_function(
        self,
        function: str,
        args: dict[str, Any],
        /,
        *,
        returns: Returns,
        write: bool,
        **context: Any,
    ) -> Any:
        # jsonb arguments travel as Jsonb; text, times (ISO text) and NULL go untyped, so
        # the function's signature types them
        values = [Jsonb(v) if isinstance(v, dict | list) else v for v in args.values()]
        placeholders: list[sql.Composable] = [sql.Placeholder() for _ in args]
        fence = self.fence if write and _FENCED_ARG in args else None
        if fence is not None:
            # A runner's write (its reports): the fence rides an argument, which the
            # server evaluates before the function's body, so the call is one statement
            # and its own transaction (one round trip, not BEGIN, set_config, the call,
            # COMMIT); set_config's value is cut to nothing, the argument stays its own
            at = list(args).index(_FENCED_ARG)
            placeholders[at] = sql.SQL(_FENCED_VALUE).format(sql.Placeholder(), sql.Placeholder())
            values[at:at] = [fence.token]
        call = sql.SQL("{}({})").format(
            sql.Identifier(function),
            sql.SQL(", ").join(
                sql.SQL("{} => {}").format(sql.Identifier(k), p)
                for k, p in zip(args, placeholders, strict=True)
            ),
        )
        if returns == "rows":
            query = sql.SQL("SELECT * FROM {}").format(call)
        else:
            query = sql.SQL("SELECT {} AS value").format(call)

        def op(cur: Cur) -> Any:
            cur.execute(query, values)
            if returns == "rows":
                return cur.fetchall()
            row = cur.fetchone()
            return row["value"] if returns == "value" and row else None

        return self._run(op, write=write, alone=fence is not None, **context)

    def _error(self, exc: psycopg.Error, **context: Any) -> ZapvisorError:
        found = pg.contract_error(exc.sqlstate, exc.diag.message_detail, **context)
        if found is not None:
            return found
        if exc.sqlstate in pg.SCHEMA_MISSING:
            return pg.schema_missing(self.name)
        message = pg.redact(pg.first_line(str(exc)), self._secrets)
        if exc.sqlstate == "42501":
            return StoreError(
                f"the {self.name} refused: {message} (connect as the user that ran "
                "`zapvisor db migrate`, or the project's postgres user)"
            )
        return StoreError(f"the {self.name} failed: {message}")
