//! `ServerMsg` from arbitrary bytes: never a panic; whatever decodes re-encodes to a frame
//! that decodes to the same message.
#![no_main]

use imagecast_shared::frame::{OutFrame, decode};
use imagecast_shared::msg::ServerMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(msg) = decode::<ServerMsg>(body, "message") else {
        return;
    };
    let frame = OutFrame::encode(&msg).expect("a decoded message encodes");
    let mut wire = Vec::with_capacity(frame.wire_len());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    {
        let write = std::pin::pin!(frame.write_to(&mut wire));
        assert!(write.poll(&mut cx).is_ready());
    }
    let again: ServerMsg = decode(&wire[4..], "message").expect("a re-encoded message decodes");
    assert_eq!(again, msg);
});
