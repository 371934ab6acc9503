"""The API's reply documents for the configured database: built by PostgreSQL over
`PreparedReads` connections of their own, or formatted from the read models on SQLite."""

from __future__ import annotations

from api.documents import POOL_SIZE, DatabaseDocuments, Documents, ReadModelDocuments
from infra.prepared_reads import PreparedReads
from projections.database import ProjectionDatabase
from projections.sql_read_models import SqlReadModels
from projections.tables import Dialect


class PostgresDocuments(DatabaseDocuments):
    """The database-built documents, each statement over its own `PreparedReads` lanes."""

    def __init__(self, database: ProjectionDatabase, pool_size: int = POOL_SIZE) -> None:
        super().__init__(database, PreparedReads, pool_size)


def documents_for(read_models: SqlReadModels) -> Documents:
    if read_models.database.dialect is Dialect.POSTGRES:
        return PostgresDocuments(read_models.database)
    return ReadModelDocuments(read_models)
