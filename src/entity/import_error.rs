//! One rejected row of an import.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_errors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub import_id: String,
    /// The line number in the uploaded file where the row starts.
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
