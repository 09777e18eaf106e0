//! The frame reader on arbitrary bytes: the first byte picks the size limit and how many
//! bytes each read hands out; the rest is the stream. Every body is within the limit, a
//! length over the limit is refused before the body is read, and the reader always ends.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use imagecast_shared::ProtoError;
use imagecast_shared::frame::FrameReader;
use imagecast_shared::limits::{MAX_FRAME, MAX_HELLO_FRAME};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};

/// Hands out at most `step` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.step.min(buf.remaining()).min(self.data.len());
        let data = self.data;
        let (now, rest) = data.split_at(n);
        buf.put_slice(now);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

/// The reader never waits on anything here: poll until ready.
fn block<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

const LIMITS: [usize; 8] = [0, 1, 4, 16, 255, 4096, MAX_HELLO_FRAME, MAX_FRAME];

fuzz_target!(|input: &[u8]| {
    let Some((&knob, stream)) = input.split_first() else {
        return;
    };
    let max = LIMITS[usize::from(knob & 7)];
    let step = usize::from(knob >> 3) + 1;
    let mut reader = FrameReader::new(Trickle { data: stream, step }, max);
    let mut consumed = 0usize;
    for _ in 0..stream.len() / 4 + 2 {
        match block(reader.read_frame()) {
            Ok(Some(body)) => {
                assert!(body.len() <= max, "{} > {max}", body.len());
                consumed += 4 + body.len();
            }
            Ok(None) => {
                assert_eq!(consumed, stream.len(), "a clean end in the middle");
                return;
            }
            Err(ProtoError::FrameTooLarge { len, max: m }) => {
                assert_eq!(m, max);
                assert!(len > max);
                let header = &stream[consumed..consumed + 4];
                assert_eq!(len as u32, u32::from_be_bytes(header.try_into().unwrap()));
                // Not one byte of the body was read.
                assert_eq!(reader.into_inner().data.len(), stream.len() - consumed - 4);
                return;
            }
            Err(ProtoError::Truncated) => return,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    panic!("more frames than the input can hold");
});
