//! A request answered before its body was read to the end (a 413 at the first byte over a
//! limit, a 401 before an upload is looked at) cannot leave its connection open: the rest of
//! the body would be read as the next request. hyper closes such a connection after the
//! response but does not say so, and a client that pools connections then sends its next
//! request into a closing socket. So the response says `Connection: close` (RFC 9112 §9.6),
//! and the client opens a new connection instead.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use futures::Stream;
use poem::{
    http::{header, HeaderValue},
    Body, Endpoint, IntoResponse, Request, Response,
};

/// A body stream that records when it has been read to its end.
struct Watched<S> {
    inner: S,
    ended: Arc<AtomicBool>,
}

impl<S: Stream + Unpin> Stream for Watched<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.ended.store(true, Ordering::Release);
        }
        next
    }
}

fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Passes `req` on and marks the response `Connection: close` when its body was not read to
/// the end (`EndpointExt::around`).
pub async fn close_unread<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if !has_body(&req) {
        return Ok(next.call(req).await?.into_response());
    }
    let ended = Arc::new(AtomicBool::new(false));
    let body = Watched {
        inner: req.take_body().into_bytes_stream(),
        ended: ended.clone(),
    };
    req.set_body(Body::from_bytes_stream(body));
    let mut resp = match next.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    if !ended.load(Ordering::Acquire) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(resp)
}
