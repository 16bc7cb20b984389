//! Handlers of the `Imports` operations: extract, call one service method, map the result.

use poem_openapi::payload::Json;

use crate::{
    api::{
        csv_body::CsvBody,
        error::Problem,
        generated::{
            CancelImportResponse, DeleteImportResponse, GetImportErrorsResponse, GetImportResponse,
            ImportAccepted, ImportAcceptedStatus, ImportProductsErrorPolicy, ImportProductsMode,
            ImportProductsResponse, ImportRowError, ImportStatus, ImportStatusErrorPolicy,
            ImportStatusMode, ImportStatusStatus, ImportsHandlers,
        },
        nullable,
        security::Seller,
        upload::{self, Upload},
        Api,
    },
    domain::{ErrorPolicy, ImportReport, ImportStatus as State, Mode},
    service::import::Options,
};

fn to_api(import: ImportReport) -> ImportStatus {
    let status = match import.status {
        State::Queued => ImportStatusStatus::Queued,
        State::Processing => ImportStatusStatus::Processing,
        State::Completed => ImportStatusStatus::Completed,
        State::Failed => ImportStatusStatus::Failed,
        State::Cancelled => ImportStatusStatus::Cancelled,
    };
    let mode = match import.mode {
        Mode::Insert => ImportStatusMode::Insert,
        Mode::Upsert => ImportStatusMode::Upsert,
    };
    let error_policy = match import.error_policy {
        ErrorPolicy::Abort => ImportStatusErrorPolicy::Abort,
        ErrorPolicy::SkipInvalid => ImportStatusErrorPolicy::SkipInvalid,
    };
    ImportStatus {
        import_id: import.id,
        status,
        mode,
        dry_run: import.dry_run,
        error_policy,
        total_rows: import.total_rows,
        processed: import.processed,
        created: import.created,
        updated: import.updated,
        unchanged: import.unchanged,
        failed: import.failed,
        warnings: import.warnings,
        errors: import
            .errors
            .into_iter()
            .map(|e| ImportRowError {
                row: e.row,
                column: nullable(e.column),
                value: nullable(e.value),
                message: e.message,
            })
            .collect(),
        failure: nullable(import.failure),
        cancel_requested: import.cancel_requested,
        created_at: import.created_at,
        started_at: nullable(import.started_at),
        finished_at: nullable(import.finished_at),
        updated_at: import.updated_at,
    }
}

impl ImportsHandlers for Api {
    async fn import_products(
        &self,
        seller: Seller,
        mode: Option<ImportProductsMode>,
        dry_run: bool,
        error_policy: ImportProductsErrorPolicy,
        body: Upload,
    ) -> Result<ImportProductsResponse, Problem> {
        let options = Options {
            mode: mode.map(|m| match m {
                ImportProductsMode::Upsert => Mode::Upsert,
                ImportProductsMode::Insert => Mode::Insert,
            }),
            dry_run,
            error_policy: match error_policy {
                ImportProductsErrorPolicy::SkipInvalid => ErrorPolicy::SkipInvalid,
                ImportProductsErrorPolicy::Abort => ErrorPolicy::Abort,
            },
        };
        let file = upload::file_bytes(body, self.state.config.import_max_bytes)?;
        let import = self.state.imports.accept(&seller, file, options).await?;
        let location = format!("/api/products/import/{}", import.id);
        Ok(ImportProductsResponse::Accepted(
            Json(ImportAccepted {
                message: "Import processing started".to_string(),
                import_id: import.id,
                status: ImportAcceptedStatus::Processing,
            }),
            location,
        ))
    }

    async fn get_import(
        &self,
        seller: Seller,
        import_id: String,
    ) -> Result<GetImportResponse, Problem> {
        let import = self.state.imports.get(&seller, &import_id).await?;
        Ok(GetImportResponse::Ok(Json(to_api(import))))
    }

    async fn cancel_import(
        &self,
        seller: Seller,
        import_id: String,
    ) -> Result<CancelImportResponse, Problem> {
        let import = self.state.imports.cancel(&seller, &import_id).await?;
        Ok(CancelImportResponse::Ok(Json(to_api(import))))
    }

    async fn delete_import(
        &self,
        seller: Seller,
        import_id: String,
    ) -> Result<DeleteImportResponse, Problem> {
        self.state.imports.delete(&seller, &import_id).await?;
        Ok(DeleteImportResponse::NoContent)
    }

    async fn get_import_errors(
        &self,
        seller: Seller,
        import_id: String,
    ) -> Result<GetImportErrorsResponse, Problem> {
        let rows = self.state.imports.errors_csv(&seller, &import_id).await?;
        let disposition = format!("attachment; filename=\"{import_id}-errors.csv\"");
        Ok(GetImportErrorsResponse::Ok(CsvBody::new(rows), disposition))
    }
}
