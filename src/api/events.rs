//! Handler of the `Events` operation: the seller's Server-Sent Events stream.

use std::{collections::HashSet, time::Duration};

use futures::StreamExt;
use poem::{http::StatusCode, web::sse::Event};
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    api::{
        error::{codes, Problem},
        generated::{EventsHandlers, SubscribeToEventsResponse},
        security::Seller,
        sse::SseBody,
        Api,
    },
    service::{
        events::EventType,
        notifications::{Frame, StreamError},
    },
};

fn last_event_id(raw: Option<String>) -> Result<Option<i64>, Problem> {
    raw.map(|v| {
        v.trim().parse::<i64>().map_err(|_| {
            Problem::validation(
                "Last-Event-ID",
                "type(integer)",
                json!(v),
                "Invalid Last-Event-ID: an event id is an integer".to_string(),
            )
        })
    })
    .transpose()
}

fn types(raw: Option<String>) -> Result<Option<HashSet<String>>, Problem> {
    let Some(raw) = raw else { return Ok(None) };
    raw.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match EventType::parse(t) {
            Some(kind) => Ok(kind.as_str().to_string()),
            None => Err(Problem::validation(
                "types",
                "enum(ProductCreated,ProductUpdated,ProductDeleted,LowStockWarning)",
                json!(t),
                format!("Invalid parameter `types`: unknown event type {t}"),
            )),
        })
        .collect::<Result<HashSet<_>, _>>()
        .map(Some)
}

/// The SSE frames of one stream frame.
fn frames(frame: Frame, seller: &str, retry_ms: u64) -> Vec<Event> {
    match frame {
        // Twice: unnamed, so that listeners written for the Node.js service see it in
        // `onmessage`, and as `event: connected` for the clients that listen for that.
        Frame::Connected => {
            let hello = json!({
                "type": "connected",
                "sellerId": seller,
                "timestamp": chrono::Utc::now().timestamp_millis(),
                "message": "SSE connection established",
            })
            .to_string();
            vec![
                Event::retry(retry_ms),
                Event::message(hello.clone()),
                Event::message(hello).event_type("connected"),
            ]
        }
        Frame::Event(n) => vec![Event::message(n.body.clone())
            .id(n.id.to_string())
            .event_type(n.event_type.clone())],
        Frame::Reset { last_event_id } => vec![Event::message(
            json!({
                "type": "reset",
                "lastEventId": last_event_id.to_string(),
                "message": "Events after this id are no longer kept; refetch the products.",
            })
            .to_string(),
        )
        .event_type("reset")],
        Frame::Shutdown => vec![
            Event::retry(retry_ms),
            Event::message(json!({ "type": "shutdown" }).to_string()).event_type("shutdown"),
        ],
    }
}

impl EventsHandlers for Api {
    async fn subscribe_to_events(
        &self,
        seller: Seller,
        // The credentials they carry were read once for the request, before the route.
        _x_seller_id: Option<String>,
        _seller_id: Option<String>,
        _access_token: Option<String>,
        last_event_id_header: Option<String>,
        last_event_id_query: Option<String>,
        types_filter: Option<String>,
    ) -> Result<SubscribeToEventsResponse, Problem> {
        let resume = last_event_id(last_event_id_header.or(last_event_id_query))?;
        let types = types(types_filter)?;
        let config = &self.state.config;
        let (retry_ms, heartbeat) = (
            config.sse_retry_ms,
            Duration::from_secs(config.sse_heartbeat_secs),
        );
        let name = seller.as_str().to_string();
        let rx = self
            .state
            .streams
            .open(seller, resume, types)
            .map_err(|e| match e {
                StreamError::TooManyStreams(max) => Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    codes::TOO_MANY_STREAMS,
                    format!("A seller may hold at most {max} event streams at once"),
                ),
                StreamError::Database(e) => {
                    Problem::from(crate::service::products::ProductError::Database(e))
                }
            })?;
        let events = ReceiverStream::new(rx)
            .flat_map(move |frame| futures::stream::iter(frames(frame, &name, retry_ms)))
            .boxed();
        Ok(SubscribeToEventsResponse::Ok(SseBody::new(
            events, heartbeat,
        )))
    }
}
