//! Full-text search over what was said on a case (customer and agent messages, internal
//! notes) and who said it (contact names), and typed custom fields on contacts.
//!
//! Parley normalises and splits text itself (see `parley::domain::text`), so both
//! databases index the same words: `search_documents.terms` holds them, space separated.
//! SQLite serves word lookups from an FTS5 index kept in step by triggers (its tokenizer
//! only has to split on the spaces Parley put there); PostgreSQL from a GIN index on the
//! words as an array. The original text stays beside them for highlighted snippets.

use crate::columns::{big, big_null, id, index, text};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const DOCUMENTS: &str = "search_documents";
const FIELDS: &str = "contact_fields";
const VALUES: &str = "contact_field_values";

/// SQLite: the FTS5 index reads its words from `search_documents` (external content), and
/// triggers keep it in step with every insert, update and delete there.
const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='search_documents', \
     content_rowid='id', tokenize=\"unicode61 remove_diacritics 0 categories 'L* N* M*'\")",
    "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN \
     INSERT INTO search_fts(rowid, terms) VALUES (new.id, new.terms); END",
    "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN \
     INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.id, old.terms); END",
    "CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents BEGIN \
     INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.id, old.terms); \
     INSERT INTO search_fts(rowid, terms) VALUES (new.id, new.terms); END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS search_documents_au",
    "DROP TRIGGER IF EXISTS search_documents_ad",
    "DROP TRIGGER IF EXISTS search_documents_ai",
    "DROP TABLE IF EXISTS search_fts",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE INDEX ix_search_documents_terms ON search_documents \
     USING gin (string_to_array(terms, ' '))",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new(DOCUMENTS))
                .col(id(Alias::new("id")))
                // Null for a contact's name, which stands for every case of the contact.
                .col(big_null(Alias::new("conversation_id")))
                .col(big(Alias::new("contact_id")))
                // message, note or contact
                .col(text(Alias::new("kind")))
                .col(big(Alias::new("source_id")))
                .col(text(Alias::new("body")))
                .col(text(Alias::new("terms")))
                .col(big(Alias::new("created_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_search_documents_conversation",
            Alias::new(DOCUMENTS),
            &["conversation_id", "kind"],
        ))
        .await?;
        m.create_index(index(
            "ix_search_documents_contact",
            Alias::new(DOCUMENTS),
            &["contact_id", "kind"],
        ))
        .await?;
        m.create_index(index(
            "ix_search_documents_source",
            Alias::new(DOCUMENTS),
            &["kind", "source_id"],
        ))
        .await?;
        let db = m.get_connection();
        let statements = match db.get_database_backend() {
            DbBackend::Sqlite => SQLITE_UP,
            DbBackend::Postgres => POSTGRES_UP,
            DbBackend::MySql => &[][..],
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }

        m.create_table(
            Table::create()
                .table(Alias::new(FIELDS))
                .col(id(Alias::new("id")))
                .col(
                    ColumnDef::new(Alias::new("key"))
                        .text()
                        .not_null()
                        .unique_key(),
                )
                .col(text(Alias::new("label")))
                // text, number, boolean, date or enum
                .col(text(Alias::new("kind")))
                // JSON list of an enum's options
                .col(ColumnDef::new(Alias::new("options")).text().null())
                .col(text(Alias::new("defined_by")))
                .col(big(Alias::new("created_at")))
                .col(big(Alias::new("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new(VALUES))
                .col(big(Alias::new("contact_id")))
                .col(big(Alias::new("field_id")))
                // The value in its canonical text form (see `parley::domain::fields`).
                .col(text(Alias::new("value")))
                .col(text(Alias::new("set_by")))
                .col(big(Alias::new("updated_at")))
                .primary_key(
                    Index::create()
                        .col(Alias::new("contact_id"))
                        .col(Alias::new("field_id")),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new(VALUES)).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Alias::new(FIELDS)).to_owned())
            .await?;
        let db = m.get_connection();
        if db.get_database_backend() == DbBackend::Sqlite {
            for sql in SQLITE_DOWN {
                db.execute_unprepared(sql).await?;
            }
        }
        m.drop_table(Table::drop().table(Alias::new(DOCUMENTS)).to_owned())
            .await
    }
}
