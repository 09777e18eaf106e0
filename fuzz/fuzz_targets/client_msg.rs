//! `ClientMsg` from arbitrary bytes, through the server's own decoder: never a panic; a body
//! that decodes holds exactly one message (a byte more is refused as trailing, so a frame can
//! bring nothing along that the server did not ask for), and it re-encodes to a frame that
//! decodes to the same message.
#![no_main]

use bytes::Bytes;
use imagecast_shared::ProtoError;
use imagecast_shared::frame::{OutFrame, decode_client_msg};
use imagecast_shared::msg::ClientMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(msg) = decode_client_msg(Bytes::copy_from_slice(body)) else {
        return;
    };
    let mut longer = body.to_vec();
    longer.push(0);
    assert!(matches!(
        decode_client_msg(Bytes::from(longer)),
        Err(ProtoError::Trailing { extra: 1, .. })
    ));
    let frame = OutFrame::encode(&msg).expect("a decoded message encodes");
    let mut wire = Vec::with_capacity(frame.wire_len());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    {
        let write = std::pin::pin!(frame.write_to(&mut wire));
        assert!(write.poll(&mut cx).is_ready());
    }
    let again = decode_client_msg(Bytes::copy_from_slice(&wire[4..]))
        .expect("a re-encoded message decodes");
    assert_eq!(again, msg);
});
