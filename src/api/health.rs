//! Handlers of the `Health` operations.

use poem_openapi::payload::Json;

use crate::{
    api::{
        error::Problem,
        generated::{
            ComponentHealth, ComponentHealthStatus, GetHealthResponse, GetLivenessResponse,
            GetReadinessResponse, HealthComponents, HealthHandlers, HealthReport,
            HealthReportStatus, Liveness, LivenessStatus,
        },
        Api,
    },
    service::health::{Component, Overall, Report, State},
};

fn component(c: Component) -> ComponentHealth {
    ComponentHealth {
        status: match c.state {
            State::Up => ComponentHealthStatus::Up,
            State::Down => ComponentHealthStatus::Down,
            State::Disabled => ComponentHealthStatus::Disabled,
        },
        latency_ms: i64::try_from(c.latency.as_millis()).unwrap_or(i64::MAX),
        detail: c.detail,
        backlog: c.backlog,
        oldest_unpublished_age_seconds: c.oldest_age_secs,
    }
}

fn to_api(r: Report) -> (bool, HealthReport) {
    let ready = r.overall != Overall::Unavailable;
    let report = HealthReport {
        status: match r.overall {
            Overall::Ok => HealthReportStatus::Ok,
            Overall::Degraded => HealthReportStatus::Degraded,
            Overall::Unavailable => HealthReportStatus::Unavailable,
        },
        reason: r.reason,
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_seconds: i64::try_from(r.uptime.as_secs()).unwrap_or(i64::MAX),
        components: HealthComponents {
            database: component(r.database),
            redis: component(r.redis),
            kafka: component(r.kafka),
            outbox: component(r.outbox),
        },
    };
    (ready, report)
}

impl HealthHandlers for Api {
    async fn get_liveness(&self) -> Result<GetLivenessResponse, Problem> {
        Ok(GetLivenessResponse::Ok(Json(Liveness {
            status: LivenessStatus::Ok,
        })))
    }

    async fn get_readiness(&self) -> Result<GetReadinessResponse, Problem> {
        Ok(match to_api(self.state.health.report().await) {
            (true, report) => GetReadinessResponse::Ok(Json(report)),
            (false, report) => GetReadinessResponse::ServiceUnavailable(Json(report)),
        })
    }

    async fn get_health(&self) -> Result<GetHealthResponse, Problem> {
        Ok(match to_api(self.state.health.report().await) {
            (true, report) => GetHealthResponse::Ok(Json(report)),
            (false, report) => GetHealthResponse::ServiceUnavailable(Json(report)),
        })
    }
}
