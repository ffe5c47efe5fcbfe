"""PyDAL runtime access: one unit of work per worker-thread call, pooled connections.

`await db.run(fn)` runs `fn(dal)` in one of DB_POOL_SIZE worker threads and ends it in a
commit (or a rollback when `fn` raises), reads included, so no connection is ever left
"idle in transaction". Each worker thread owns its DAL (PyDAL keeps the current connection
in a thread-local, so a DAL must never cross threads); connections come from PyDAL's pool,
which runs `SELECT 1` at checkout, so connections killed by a database restart are
dropped and replaced instead of failing the next request.

Start-up runs the additive migrations once, in a dedicated DAL with `InDBMigrator`
(state in the `web2py_filesystem` table, never `.table` files): tables PyDAL has no record
of were created by SQLAlchemy, so they are "fake migrated" once to record their state.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
from pydal import DAL
from pydal._globals import THREAD_LOCAL
from pydal.helpers.classes import DatabaseStoredFile
from pydal.migrator import InDBMigrator

from app.config import Settings
from app.db.errors import DatabaseUnavailable, map_error
from app.db.pydal_tables import define_tables
from app.db.schema import metadata as default_metadata
from app.db.setup import schema_lock, sqlite_wal
from app.db.urls import mask, pydal_uri, sqlite_path

__all__ = ["MIGRATION_PREFIX", "MYSQL_STRICT_MODE", "Database", "DatabaseStats"]

log = logging.getLogger("floe.db")
T = TypeVar("T")

# Migration records are named "<prefix>_<table>.table" in web2py_filesystem. A fixed
# prefix (PyDAL's default is a hash of the URI, password included) keeps the state valid
# when credentials or hosts change.
MIGRATION_PREFIX = "floe"

# sql_mode for PyDAL's MariaDB connections: PyDAL's adapter sets NO_BACKSLASH_ESCAPES
# alone, which switches strict mode off (over-long strings silently truncated).
MYSQL_STRICT_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
)
MYSQL_SQL_MODE = MYSQL_STRICT_MODE + ",NO_BACKSLASH_ESCAPES"  # PyDAL quotes '' not \'


@dataclass(slots=True)
class DatabaseStats:
    """Counters for metrics: units run, failed, rejected (queue full), broken connections
    dropped. Updated by worker threads under `lock`."""

    units: int = 0
    failures: int = 0
    rejected: int = 0
    reconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


class Database:
    """The runtime PyDAL access point (`get_runtime(app).components["db"]`)."""

    def __init__(
        self,
        settings: Settings,
        schema: sa.MetaData = default_metadata,
        *,
        max_pending: int | None = None,
    ) -> None:
        self.settings = settings
        self.backend = settings.db_type
        self.schema = schema
        self.tables: tuple[str, ...] = tuple(t.name for t in schema.sorted_tables)
        self.stats = DatabaseStats()
        self.wsrep = False
        self._uri = pydal_uri(settings)
        self._pool_size = settings.db_pool_size
        self._max_pending = max_pending or settings.db_pool_size * 32
        self._pending = 0
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"Database({mask(self._uri)})"

    @property
    def pending(self) -> int:
        """Units submitted and not finished (queued + running): pool utilisation."""
        return self._pending

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Run the additive migrations once, then open the worker pool."""
        if self.backend == "sqlite":
            sqlite_path(self.settings).parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._migrate)
        self._executor = ThreadPoolExecutor(
            max_workers=self._pool_size, thread_name_prefix="floe-db"
        )
        if self.backend == "mysql":
            try:
                self.wsrep = await self.run(_wsrep_on)
            except BaseException:
                await self.close()
                raise
        log.info(
            "database ready: %s (pool %d%s)",
            mask(self._uri),
            self._pool_size,
            ", galera" if self.wsrep else "",
        )

    async def close(self) -> None:
        """Stop the workers and close every pooled connection."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
        await asyncio.to_thread(self._drain_pool)

    def _drain_pool(self) -> None:
        from pydal.connection import ConnectionPool

        pool = ConnectionPool.POOLS.pop(self._uri, [])
        for connection in pool:
            try:
                connection.close()
            except Exception:  # noqa: S110 - closing a dead connection may fail; nothing to do
                pass

    # -- DAL construction --------------------------------------------------------------

    def open_dal(self, *, migrate: bool = False, pool_size: int | None = None) -> DAL:
        """A new DAL on this database with Floe's fixes applied (tables not defined)."""
        try:
            dal = DAL(
                self._uri,
                pool_size=self._pool_size if pool_size is None else pool_size,
                migrate=migrate,
                migrate_enabled=migrate,
                fake_migrate_all=False,
                decode_credentials=True,
                attempts=1,
                table_hash=MIGRATION_PREFIX,
                adapter_args={"migrator": InDBMigrator, "logfile": ""},
            )
        except RuntimeError as error:
            # PyDAL wraps connect failures (PostgreSQL connects eagerly) in RuntimeError
            # carrying the driver traceback; keep its last line only.
            if "Failure to connect" not in str(error):
                raise
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise DatabaseUnavailable(
                f"cannot connect to {mask(self._uri)}: {lines[-1].strip() if lines else error}"
            ) from None
        _harden(dal)
        return dal

    def _migrate(self) -> None:
        dal = self.open_dal(migrate=True, pool_size=0)
        try:
            # SQLite: PyDAL commits per table, so no BEGIN IMMEDIATE here; SQLite is a
            # single-instance backend.
            with schema_lock(dal.executesql, self.backend, sqlite=False):
                DatabaseStoredFile.try_create_web2py_filesystem(dal)
                rows = dal.executesql("SELECT path FROM web2py_filesystem")
                recorded = {str(row[0]) for row in rows}
                fake = [t for t in self.tables if f"{MIGRATION_PREFIX}_{t}.table" not in recorded]
                define_tables(dal, self.schema, migrate=True, fake_migrate=fake)
                dal.commit()
            if fake:
                log.info("database: recorded migration state for %s", ", ".join(fake))
        except Exception as error:
            _rollback_quietly(dal)
            mapped = map_error(error)
            if mapped is not None and mapped is not error:
                raise mapped from error
            raise
        finally:
            dal.close()

    def _thread_dal(self) -> DAL:
        dal: DAL | None = getattr(self._local, "dal", None)
        if dal is None:
            dal = self.open_dal()
            define_tables(dal, self.schema, migrate=False)
            self._local.dal = dal
        return dal

    # -- units of work -----------------------------------------------------------------

    async def run(self, fn: Callable[[DAL], T]) -> T:
        """Run `fn(dal)` in a worker thread as one unit of work (commit or rollback).

        Raises `IntegrityError`, `DataError` or `DatabaseUnavailable` for driver errors.
        """
        executor = self._executor
        if executor is None:
            raise DatabaseUnavailable("database is not started")
        if self._pending >= self._max_pending:
            self.stats.count("rejected")
            raise DatabaseUnavailable(f"database queue full ({self._max_pending} pending)")
        self._pending += 1
        try:
            context = contextvars.copy_context()
            call = functools.partial(context.run, self._unit, fn)
            return await asyncio.get_running_loop().run_in_executor(executor, call)
        finally:
            self._pending -= 1

    def _unit(self, fn: Callable[[DAL], T]) -> T:
        dal = self._thread_dal()
        adapter = dal._adapter
        self.stats.count("units")
        try:
            result = fn(dal)
            dal.commit()
        except BaseException as error:
            self.stats.count("failures")
            mapped = map_error(error)
            lost = isinstance(mapped, DatabaseUnavailable)
            if lost or not _rollback_quietly(dal):
                self.stats.count("reconnects")
                _close_quietly(dal)
            else:
                adapter.close(action=None)
            if mapped is not None and mapped is not error:
                raise mapped from error
            raise
        adapter.close(action=None)  # back to PyDAL's pool (pinged at next checkout)
        return result

    async def ping(self, timeout: float = 1.5) -> tuple[bool, str]:  # noqa: ASYNC109
        """Readiness: a cheap query (`wsrep_ready` on Galera) within `timeout` seconds."""
        check = _wsrep_ready if self.wsrep else _select_one
        try:
            ok, detail = await asyncio.wait_for(self.run(check), timeout)
        except TimeoutError:
            return False, f"{self.backend}: no answer within {timeout:g} s"
        except Exception as error:
            return False, f"{self.backend}: {type(error).__name__}: {_one_line(error)}"
        return ok, f"{self.backend}: {detail}"


# -- helpers run in worker threads ---------------------------------------------------------


def _select_one(dal: DAL) -> tuple[bool, str]:
    dal.executesql("SELECT 1")
    return True, "ok"


def _wsrep_on(dal: DAL) -> bool:
    rows = dal.executesql("SHOW VARIABLES LIKE 'wsrep_on'")
    return bool(rows) and str(rows[0][1]).upper() == "ON"


def _wsrep_ready(dal: DAL) -> tuple[bool, str]:
    rows = dal.executesql("SHOW STATUS LIKE 'wsrep_ready'")
    ready = bool(rows) and str(rows[0][1]).upper() == "ON"
    return ready, "ok (wsrep_ready=ON)" if ready else "galera node not ready (wsrep_ready!=ON)"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _rollback_quietly(dal: DAL) -> bool:
    try:
        dal.rollback()
    except Exception:
        return False
    return True


def _close_quietly(dal: DAL) -> None:
    """Drop the thread's connection for good (it is broken): never return it to the pool."""
    adapter = dal._adapter
    # Read the thread-local slot directly: `adapter.connection` would open a new one.
    connection = getattr(THREAD_LOCAL, adapter._connection_uname_, None)
    setattr(THREAD_LOCAL, adapter._connection_uname_, None)
    setattr(THREAD_LOCAL, adapter._cursors_uname_, None)
    if connection is not None:
        try:
            connection.close()
        except Exception:  # noqa: S110 - the connection is already dead
            pass


def _harden(dal: DAL) -> None:
    """Per-connection settings PyDAL gets wrong, applied after every (re)connect."""
    adapter = dal._adapter
    engine = adapter.dbengine
    original = adapter.after_connection

    if engine == "mysql":

        def after_connection() -> None:
            original()
            adapter.execute(f"SET SESSION sql_mode='{MYSQL_SQL_MODE}';")

    elif engine == "sqlite":

        def after_connection() -> None:
            original()
            adapter.execute("PRAGMA busy_timeout=5000;")
            sqlite_wal(adapter.execute)

    else:
        return
    adapter.after_connection = after_connection
