//! Calls a [`GreeterClient`] makes against [`DemoGreeter`](crate::DemoGreeter) and the
//! answers it must get, whatever transport the client calls through (a plain `Channel`, or
//! one behind a tower layer such as a measuring client layer).
//!
//! Each method panics when an answer is not what `DemoGreeter` gives: they are for tests
//! and load that check what a layer records, so a wrong answer must stop them.

use crate::demo::greeter_client::GreeterClient;
use crate::demo::{CountRequest, HelloRequest};
use tonic::codegen::{Body, Bytes, StdError};
use tonic::Status;

// The bounds are those of the generated client's own methods, so that any transport it
// accepts can make these calls too.
impl<T> GreeterClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// Calls `SayHello` `times` times, one after the other, as `n0`, `n1`, … and checks
    /// each greeting.
    ///
    /// # Panics
    /// If a call fails or a greeting is not `hello, n<i>`.
    pub async fn say_hello_times(&mut self, times: usize) {
        for i in 0..times {
            let reply = self
                .say_hello(HelloRequest {
                    name: format!("n{i}"),
                })
                .await
                .expect("SayHello succeeds");
            assert_eq!(reply.into_inner().message, format!("hello, n{i}"));
        }
    }

    /// Calls `CountTo` for `1..=to` with `delay_ms` before each message, reads the stream
    /// to its end and returns how many messages arrived.
    ///
    /// # Panics
    /// If the call or the stream fails.
    pub async fn count_to_the_end(&mut self, to: u32, delay_ms: u32) -> usize {
        let mut stream = self
            .count_to(CountRequest {
                to,
                fail_at: 0,
                delay_ms,
            })
            .await
            .expect("CountTo starts")
            .into_inner();
        let mut received = 0;
        while stream
            .message()
            .await
            .expect("the stream succeeds")
            .is_some()
        {
            received += 1;
        }
        received
    }

    /// Calls `CountTo` for `1..=to` set to fail at `fail_at`, with no delay, and reads the
    /// stream until it fails: the numbers received before, and the status it failed with.
    /// The stream is dropped before this returns, so the call is over.
    ///
    /// # Panics
    /// If the call does not start, or the stream ends without failing.
    pub async fn count_to_the_failure(&mut self, to: u32, fail_at: u32) -> (Vec<u32>, Status) {
        let mut stream = self
            .count_to(CountRequest {
                to,
                fail_at,
                delay_ms: 0,
            })
            .await
            .expect("CountTo starts")
            .into_inner();
        let mut received = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(reply)) => received.push(reply.n),
                Ok(None) => panic!("the stream must fail"),
                Err(status) => return (received, status),
            }
        }
    }
}
