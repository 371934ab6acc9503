"""The composition root: settings in, one `Services` object out, every dependency explicit
(the API's included: `api.services.Services` is what `create_app` asks of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.postgres import PostgresFactory

from api.documents import Documents
from domain.assistant import CHAT_ENUMS
from domain.assistant.chat import Assistant, StatusReportingModel
from domain.errors import ConfigurationError
from domain.ledger import Ledger, TradingConfig
from domain.ports import ApiCredentials, Clock, Exchange
from domain.store import EventStore
from infra.clock import SystemClock
from infra.documents import documents_for
from infra.event_recorder import fail_fast
from infra.groq_model import GroqChatModel
from infra.idempotency_keys import SqlIdempotencyKeys, create_idempotency_table
from infra.paper_exchange import PaperExchange
from infra.paper_prices import paper_exchange
from infra.rate_counts import SqlCounter, create_rate_limit_table
from infra.settings import Settings, private_file
from infra.vault import FernetVault, vault_from
from projections.catalog import PROJECTION_NAMES, all_projections, all_tables
from projections.database import TRACKING, PostgresParams, ProjectionDatabase
from projections.rebuild import RebuildReport, rebuild, reshaped
from projections.runner import ProjectionRunner
from projections.sql_read_models import SqlReadModels
from projections.tables import Dialect


@dataclass
class Services:
    settings: Settings
    store: EventStore
    ledger: Ledger
    exchange: Exchange
    paper: PaperExchange | None
    vault: FernetVault
    clock: Clock
    read_models: SqlReadModels  # queries over the projection tables
    projections: ProjectionRunner  # keeps them up to date: start() follows the log
    assistant: Assistant  # the AI chat (Groq through the ChatModel port) and its fallback
    rate_counts: SqlCounter  # the API's per-token counts, shared by every replica
    documents: Documents  # the API's busiest reads; opened and closed by its lifespan
    idempotency_keys: SqlIdempotencyKeys  # the order POSTs' Idempotency-Key records

    def close(self) -> None:
        self.assistant.model.close()
        self.projections.stop()
        self.rate_counts.close()
        self.idempotency_keys.close()
        self.read_models.close()
        self.store.close()


class NotMigrated(ConfigurationError):
    """The database has none of the tables `robson migrate` creates."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} has no Robson tables yet: run `robson migrate` first")


# What ROBSON_DATABASE_URL names: the same record the projections connect with.
PostgresTarget = PostgresParams


def postgres_target(url: str) -> PostgresTarget:
    """`postgresql://user:pass@host:port/db?schema=s`; `?host=/run/postgresql` (libpq's own
    spelling) reaches a server on the same machine through its Unix socket directory."""
    parts = urlsplit(url)
    if not parts.path.strip("/"):
        raise ConfigurationError("ROBSON_DATABASE_URL must name a database")
    query = parse_qs(parts.query)
    schema = query.get("schema", ["public"])[0]
    return PostgresTarget(
        dbname=unquote(parts.path.strip("/")),
        host=query.get("host", [parts.hostname or "127.0.0.1"])[0],
        port=str(parts.port or 5432),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        schema=schema,
    )


def store_env(settings: Settings, create_tables: bool) -> dict[str, str]:
    """The event store library's configuration (never its DB functions: they lose events)."""
    env = {"CREATE_TABLE": "y" if create_tables else "n"}  # the store caches on its own
    if settings.is_postgres:
        assert settings.database_url is not None
        target = postgres_target(settings.database_url)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=target.dbname,
            POSTGRES_HOST=target.host,
            POSTGRES_PORT=target.port,
            POSTGRES_USER=target.user,
            POSTGRES_PASSWORD=target.password,
            POSTGRES_SCHEMA=target.schema,
            POSTGRES_POOL_SIZE="4",
            POSTGRES_MAX_OVERFLOW="8",
            POSTGRES_LOCK_TIMEOUT="10",
            POSTGRES_ENABLE_DB_FUNCTIONS="n",
            APPLICATION_RECORDER_TOPIC="infra.event_recorder:LeanPostgresRecorder",
        )
    else:
        path = settings.sqlite_path
        private_file(path)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(path),
            SQLITE_LOCK_TIMEOUT="10",
            APPLICATION_RECORDER_TOPIC="infra.sqlite_recorder:CheckedSQLiteRecorder",
        )
    return env


def open_store(settings: Settings, create_tables: bool = False) -> EventStore:
    store = EventStore(env=store_env(settings, create_tables), stored_enums=CHAT_ENUMS)
    kind = type(store.factory).__module__
    expected = "eventsourcing.postgres" if settings.is_postgres else "eventsourcing.sqlite"
    if kind != expected:  # never let events go silently to memory
        raise ConfigurationError(f"event store opened with {kind}, expected {expected}")
    if isinstance(store.factory, PostgresFactory):
        fail_fast(store.factory.datastore)  # a 503 within 2 s while the database is away
    return store


def migrate(settings: Settings) -> RebuildReport | None:
    """Create every table; idempotent. Run once, before the service and workers start.

    Projections whose tables this release reshaped are rebuilt from the log (the report);
    a service of the previous release must be stopped first, as its runner would write the
    old shape."""
    if settings.is_postgres:
        assert settings.database_url is not None
        _create_schema(postgres_target(settings.database_url))
    store = open_store(settings, create_tables=True)
    try:
        return _migrate_projections(settings, store)
    finally:
        store.close()


def _migrate_projections(settings: Settings, store: EventStore) -> RebuildReport | None:
    database = projection_database(settings)
    try:
        create_rate_limit_table(database)  # the API's per-token counters, shared by replicas
        create_idempotency_table(database)  # the order POSTs' keys, shared by replicas
        database.create_tables(all_tables(), PROJECTION_NAMES)
        outdated = reshaped(database, all_projections())
        return rebuild(database, store, outdated) if outdated else None
    finally:
        database.close()


def projection_database(settings: Settings, *, durable: bool = True) -> ProjectionDatabase:
    """The read models live in the events' own database (same file, same schema)."""
    if settings.is_postgres:
        assert settings.database_url is not None
        target = postgres_target(settings.database_url)
        return ProjectionDatabase(Dialect.POSTGRES, postgres=target, durable=durable)
    return ProjectionDatabase(Dialect.SQLITE, sqlite_path=settings.sqlite_path, durable=durable)


def _create_schema(target: PostgresTarget) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        dbname=target.dbname,
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        autocommit=True,
    ) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target.schema))
        )


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    exchange: Exchange | None = None,
    chat_model: StatusReportingModel | None = None,
) -> Services:
    clock = clock or SystemClock()
    vault = vault_from(settings)
    projection_db = projection_database(settings)
    try:
        _ensure_migrated(settings, projection_db)
    except BaseException:
        projection_db.close()
        raise
    store = open_store(settings)
    paper: PaperExchange | None = None
    if exchange is None:
        if settings.exchange == "paper":
            paper = paper_exchange(settings, store, clock)
            exchange = paper
        else:
            exchange = _binance(settings)
    elif isinstance(exchange, PaperExchange):
        paper = exchange
    operator_keys = None
    if settings.binance_api_key and settings.binance_secret_key:
        operator_keys = ApiCredentials(settings.binance_api_key, settings.binance_secret_key)
    ledger = Ledger(
        store=store,
        exchange=exchange,
        cipher=vault,
        clock=clock,
        config=TradingConfig(
            trading_enabled=settings.trading_enabled,
            operator_credentials=operator_keys,
            exchange_stops=settings.exchange_stops,
            exchange_stop_slippage=settings.exchange_stop_slippage,
            exchange_stop_interval=timedelta(seconds=float(settings.exchange_stop_interval)),
        ),
    )
    read_models = SqlReadModels(projection_db, store)
    runner = ProjectionRunner(projection_db, store)
    model = chat_model or GroqChatModel(
        settings.groq_api_key,
        model=settings.ai_model,
        max_tokens=settings.ai_max_tokens,
        base_url=settings.groq_base_url,
    )
    assistant = Assistant(ledger, read_models, model, store)
    # Counts commit without waiting for the disk: a crash may forget the last few hits.
    rate_counts = SqlCounter(projection_database(settings, durable=False))
    return Services(
        settings,
        store,
        ledger,
        exchange,
        paper,
        vault,
        clock,
        read_models,
        runner,
        assistant,
        rate_counts,
        documents_for(read_models),
        SqlIdempotencyKeys(projection_database(settings, durable=True)),
    )


def _ensure_migrated(settings: Settings, database: ProjectionDatabase) -> None:
    """Fail fast, saying what to do, rather than later with a raw "no such table" (and
    without creating an empty SQLite file on the way)."""
    if settings.is_postgres:
        assert settings.database_url is not None
        where = f"PostgreSQL schema {postgres_target(settings.database_url).schema!r}"
    else:
        where = str(settings.sqlite_path)
        if not settings.sqlite_path.exists():
            raise NotMigrated(where)
    if not database.columns(TRACKING.name):  # the projections' bookkeeping, made by migrate
        raise NotMigrated(where)


def _binance(settings: Settings) -> Exchange:
    from infra.binance.exchange import BinanceExchange

    return BinanceExchange(testnet=settings.use_testnet, base_url=settings.binance_base_url)
