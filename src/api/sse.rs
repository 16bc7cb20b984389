//! `SseBody<Frame>`: the payload the generator gives `text/event-stream` responses.
//!
//! poem-openapi's `EventStream` maps each item to exactly one frame, but a stream here also
//! sends frames that carry no item (`retry:`, `connected`, `reset`, `shutdown`). This payload
//! takes ready frames from the handler. Its schema is `Frame`, the component that describes
//! one event (`event`, `id`, `retry`, `data`), as the spec declares it, so the served spec
//! matches the file.

use std::{marker::PhantomData, time::Duration};

use futures::stream::BoxStream;
use poem::{
    web::sse::{Event, SSE},
    IntoResponse, Response,
};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::Type,
};

pub struct SseBody<Item> {
    frames: BoxStream<'static, Event>,
    keep_alive: Duration,
    item: PhantomData<fn() -> Item>,
}

impl<Item> SseBody<Item> {
    /// `frames`, with a `:` comment every `keep_alive` while they are idle.
    pub fn new(frames: BoxStream<'static, Event>, keep_alive: Duration) -> Self {
        Self {
            frames,
            keep_alive,
            item: PhantomData,
        }
    }
}

impl<Item: Type> Payload for SseBody<Item> {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        Item::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Item::register(registry);
    }
}

impl<Item: Send + 'static> IntoResponse for SseBody<Item> {
    fn into_response(self) -> Response {
        SSE::new(self.frames)
            .keep_alive(self.keep_alive)
            .into_response()
    }
}
