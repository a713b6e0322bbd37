use sea_orm::entity::prelude::*;

/// One searchable text: a message, a note, or a contact's name (then with no
/// conversation: it stands for every case of the contact).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "search_documents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversation_id: Option<i64>,
    pub contact_id: i64,
    /// `message`, `note` or `contact`.
    pub kind: String,
    /// The message, note or contact id.
    pub source_id: i64,
    /// The text as written, for snippets.
    pub body: String,
    /// Its normalised words, space separated ([`crate::domain::text::index_terms`]).
    pub terms: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
