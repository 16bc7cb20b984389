//! A raw `text/event-stream` reader: frames parsed from reqwest's byte stream, as a browser's
//! `EventSource` would.

use std::time::Duration;

use futures::{stream::BoxStream, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;

use crate::cluster::served_by;

/// One event frame.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub event: String,
    pub data: Value,
}

impl Event {
    /// The product the event is about.
    pub fn product_id(&self) -> i64 {
        self.data["data"]["productId"]
            .as_i64()
            .unwrap_or_else(|| panic!("{self:?} names a product"))
    }
}

/// What the next read gave.
#[derive(Debug)]
pub enum Next {
    Event(Event),
    /// The connection ended or broke.
    Ended,
    /// Nothing but heartbeats within the wait.
    Quiet,
}

pub struct Sse {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    /// The instance holding the stream (`X-Served-By`).
    pub served_by: String,
}

impl Sse {
    /// Opens `url` for `seller`, resuming after `last` if given.
    pub async fn open(
        client: &reqwest::Client,
        url: &str,
        seller: &str,
        last: Option<i64>,
    ) -> Self {
        let mut request = client.get(url).header("X-Seller-Id", seller);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = request.send().await.expect("event stream request sent");
        assert_eq!(response.status(), StatusCode::OK, "the event stream opens");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            served_by: served_by(&response),
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
        }
    }

    /// The next event with an id (greetings, heartbeats and retry hints skipped).
    pub async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("UTF-8 frames");
                if let Some(event) = parse(&block) {
                    return Next::Event(event);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Next::Quiet,
                Ok(None | Some(Err(_))) => return Next::Ended,
                Ok(Some(Ok(chunk))) => self.buffer.extend_from_slice(&chunk),
            }
        }
    }
}

/// An event frame with an id, or `None` for greetings, comments and hints.
fn parse(block: &str) -> Option<Event> {
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in block.lines() {
        match line.split_once(':') {
            Some(("id", v)) => id = v.trim_start().parse().ok(),
            Some(("event", v)) => event = Some(v.trim_start().to_string()),
            Some(("data", v)) => data.push_str(v.strip_prefix(' ').unwrap_or(v)),
            _ => {}
        }
    }
    Some(Event {
        id: id?,
        event: event?,
        data: serde_json::from_str(&data).unwrap_or_else(|e| panic!("data of {block:?}: {e}")),
    })
}
