//! The handshake decoders from arbitrary bytes: `parse_hello`, `Hello` and `HelloReply`
//! never panic, and `parse_hello` only ever lets through a hello of this magic and version.
#![no_main]

use imagecast_shared::frame::decode;
use imagecast_shared::limits::{MAGIC, PROTOCOL_VERSION};
use imagecast_shared::msg::{Hello, HelloCheck, HelloReply, parse_hello};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let check = parse_hello(body);
    if let HelloCheck::Hello(h) = &check {
        assert_eq!(h.magic, MAGIC);
        assert_eq!(h.version, PROTOCOL_VERSION);
    }
    match decode::<Hello>(body, "hello") {
        Ok(h) if h.magic == MAGIC && h.version == PROTOCOL_VERSION => {
            assert_eq!(check, HelloCheck::Hello(h));
        }
        Ok(h) if h.magic == MAGIC => assert_eq!(check, HelloCheck::OtherVersion(h.version)),
        Ok(_) => assert_eq!(check, HelloCheck::NotHello),
        Err(_) => assert!(!matches!(check, HelloCheck::Hello(_))),
    }
    let _ = decode::<HelloReply>(body, "hello reply");
});
