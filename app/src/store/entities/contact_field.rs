use sea_orm::entity::prelude::*;

/// A custom field admins defined on contacts.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_fields")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub key: String,
    pub label: String,
    /// text, number, boolean, date or enum ([`crate::domain::fields::FieldKind`]).
    pub kind: String,
    /// An enum's options (JSON list).
    pub options: Option<String>,
    pub defined_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn options(&self) -> Vec<String> {
        self.options
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default()
    }
}
