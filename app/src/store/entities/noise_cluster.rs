use sea_orm::entity::prelude::*;

/// Near-identical texts sent from many numbers: one item for trust and safety.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "noise_clusters")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SimHash of the first text (the bits of a u64).
    pub fingerprint: i64,
    pub sample: String,
    /// What the texts look like: duplicate_cluster or spam.
    pub reason: String,
    pub contacts: i32,
    pub messages: i32,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
