//! Unary gRPC calls of any method, with the request message given as raw protobuf bytes,
//! so that no generated code is needed for the target's service.

use super::engine::{Failure, Target};
use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use http::HeaderMap;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::Status;

/// Calls `path` (`/package.Service/Method`) with the same encoded message and metadata
/// each time. Answers are decoded up to tonic's default limit (4 MiB a message); the
/// caller bounds the time.
#[derive(Clone, Debug)]
pub(crate) struct GrpcTarget {
    grpc: tonic::client::Grpc<Channel>,
    path: PathAndQuery,
    metadata: HeaderMap,
    message: Bytes,
}

impl GrpcTarget {
    pub(crate) fn new(
        channel: Channel,
        path: PathAndQuery,
        metadata: HeaderMap,
        message: Bytes,
    ) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel),
            path,
            metadata,
            message,
        }
    }
}

impl Target for GrpcTarget {
    async fn call(&self) -> Result<(), Failure> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let request = tonic::Request::from_parts(
            MetadataMap::from_headers(self.metadata.clone()),
            tonic::Extensions::default(),
            self.message.clone(),
        );
        grpc.unary(request, self.path.clone(), RawCodec)
            .await
            .map(drop)
            .map_err(|status| Failure::Grpc(status.code()))
    }
}

/// Passes message bytes through untouched in both directions.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
