//! `CsvBody`: a streamed `text/csv` payload, the type the generator gives `text/csv`
//! responses (`type: string, format: binary` in the spec).

use bytes::Bytes;
use futures::stream::BoxStream;
use poem::{Body, IntoResponse, Response};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef},
};

pub struct CsvBody(BoxStream<'static, std::io::Result<Bytes>>);

impl CsvBody {
    pub fn new(chunks: BoxStream<'static, std::io::Result<Bytes>>) -> Self {
        Self(chunks)
    }
}

impl Payload for CsvBody {
    const CONTENT_TYPE: &'static str = "text/csv";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")))
    }
}

impl IntoResponse for CsvBody {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("text/csv; charset=utf-8")
            .body(Body::from_bytes_stream(self.0))
    }
}
