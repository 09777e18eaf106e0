//! Frames: a `u32` big-endian body length, then the body (a postcard-encoded message).
//!
//! The format is exactly what `tokio_util::codec::LengthDelimitedCodec` reads and writes with
//! a 4-byte length field, but both halves are written by hand here for two reasons:
//! - reading allocates nothing while a connection is idle (the codec keeps a buffer per
//!   connection), which is what lets one server hold thousands of idle terminals;
//! - writing page data never copies it: the header and the shared page bytes go out in one
//!   vectored write, so an image pushed to a thousand terminals is held once.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ProtoError;
use crate::limits::CHUNK_SIZE;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// An encoded frame ready to write: the length prefix and message head, then an optional
/// body of page bytes shared with every other frame that carries them.
#[derive(Clone, Debug)]
pub struct OutFrame {
    head: Bytes,
    data: Bytes,
}

impl OutFrame {
    /// Encodes a message as one frame.
    pub fn encode<M: Serialize>(msg: &M) -> Result<Self, ProtoError> {
        // `to_allocvec` copies byte strings with one `extend_from_slice`; `to_extend` would
        // push them a byte at a time (5,000 times slower for a 256 KiB piece).
        let body = postcard::to_allocvec(msg).map_err(ProtoError::Encode)?;
        let mut buf = BytesMut::with_capacity(LEN_PREFIX + body.len());
        buf.put_u32(frame_len(body.len())?);
        buf.extend_from_slice(&body);
        Ok(Self {
            head: buf.freeze(),
            data: Bytes::new(),
        })
    }

    /// Encodes a message whose **last field** is a byte string, without copying the bytes.
    ///
    /// `msg` must carry an empty byte string in that field: postcard writes it as a single
    /// `0` length byte at the very end, which is replaced by the real length, and `data`
    /// follows. The result is byte-for-byte what [`OutFrame::encode`] gives for the message
    /// with `data` in place (pinned by a test).
    pub fn encode_with_data<M: Serialize>(msg: &M, data: Bytes) -> Result<Self, ProtoError> {
        let empty = Self::encode(msg)?;
        let mut head = BytesMut::from(&empty.head[..]);
        if head.last() != Some(&0) || head.len() <= LEN_PREFIX {
            return Err(ProtoError::Encode(postcard::Error::SerializeBufferFull));
        }
        head.truncate(head.len() - 1);
        let mut varint = [0u8; 10];
        let n = encode_varint(data.len() as u64, &mut varint);
        head.extend_from_slice(&varint[..n]);
        let body_len = head.len() - LEN_PREFIX + data.len();
        head[..LEN_PREFIX].copy_from_slice(&frame_len(body_len)?.to_be_bytes());
        Ok(Self {
            head: head.freeze(),
            data,
        })
    }

    /// Total bytes on the wire, prefix included.
    pub fn wire_len(&self) -> usize {
        self.head.len() + self.data.len()
    }

    /// Writes the frame with one vectored write where the stream allows it.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> std::io::Result<()> {
        let mut buf = self.head.clone().chain(self.data.clone());
        w.write_all_buf(&mut buf).await
    }

    /// The frame as one buffer to write (`write_all_buf` writes it vectored), for a writer
    /// that keeps only the buffer, not the frame too, while the write is under way.
    pub fn into_buf(self) -> bytes::buf::Chain<Bytes, Bytes> {
        self.head.chain(self.data)
    }
}

fn frame_len(len: usize) -> Result<u32, ProtoError> {
    u32::try_from(len).map_err(|_| ProtoError::FrameTooLarge {
        len,
        max: u32::MAX as usize,
    })
}

fn encode_varint(mut v: u64, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = byte;
            return i + 1;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
}

/// Encodes `msg` and writes it as one frame.
pub async fn write_msg<W: AsyncWrite + Unpin, M: Serialize>(
    w: &mut W,
    msg: &M,
) -> Result<(), ProtoError> {
    OutFrame::encode(msg)?.write_to(w).await?;
    Ok(())
}

/// The reading half of a connection: one frame at a time, under a size limit.
///
/// It holds no buffer between frames. Not cancel-safe: a read abandoned half-way leaves the
/// stream out of step, so the connection must then be closed.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames of at most `max` body bytes from `inner`.
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, max }
    }

    /// Changes the size limit (raised once the handshake has succeeded).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// The size limit in force.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Gives back the stream.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads one frame body; `None` on a clean close between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Vec<u8>>, ProtoError> {
        match self.read_len().await? {
            None => Ok(None),
            Some(len) => self.read_body(len).await.map(Some),
        }
    }

    /// Waits for the next frame and reads its length prefix (checked against the limit);
    /// `None` on a clean close between frames. Then [`FrameReader::read_body`] reads the body.
    ///
    /// The two halves of [`FrameReader::read_frame`], for a reader that waits a long time
    /// between frames: this wait holds only a few bytes of state.
    pub async fn read_len(&mut self) -> Result<Option<usize>, ProtoError> {
        let mut len = [0u8; LEN_PREFIX];
        let mut got = 0;
        while got < LEN_PREFIX {
            let n = self.inner.read(&mut len[got..]).await?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(ProtoError::Truncated)
                };
            }
            got += n;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > self.max {
            return Err(ProtoError::FrameTooLarge { len, max: self.max });
        }
        Ok(Some(len))
    }

    /// Reads the body of the frame whose length [`FrameReader::read_len`] returned.
    pub async fn read_body(&mut self, len: usize) -> Result<Vec<u8>, ProtoError> {
        let mut body = Vec::with_capacity(len.min(CHUNK_SIZE + 4096));
        (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut body)
            .await?;
        if body.len() < len {
            return Err(ProtoError::Truncated);
        }
        Ok(body)
    }

    /// Reads one frame body as shared bytes (no copy); `None` on a clean close.
    pub async fn read_frame_bytes(&mut self) -> Result<Option<Bytes>, ProtoError> {
        Ok(self.read_frame().await?.map(Bytes::from))
    }

    /// Reads and decodes one message; `None` on a clean close between frames.
    ///
    /// A body that does not decode is a [`ProtoError::Decode`]: the framing is intact, so
    /// the caller may answer with an error and go on.
    pub async fn read_msg<M: DeserializeOwned>(
        &mut self,
        what: &'static str,
    ) -> Result<Option<M>, ProtoError> {
        match self.read_frame().await? {
            None => Ok(None),
            Some(body) => decode(&body, what).map(Some),
        }
    }
}

/// The fields of a page-data message, with the bytes borrowed from the frame.
#[derive(serde::Deserialize)]
struct PageDataRef<'a> {
    id: u64,
    page: u32,
    offset: u64,
    #[serde(borrow)]
    data: &'a [u8],
}

/// Variant number of `ServerMsg::DeliverData` (one varint byte).
const DELIVER_DATA: u8 = 15;
/// Variant number of `ClientMsg::PageData` (one varint byte).
const PAGE_DATA: u8 = 6;

fn decode_page_data(
    body: &Bytes,
    what: &'static str,
    exact: bool,
) -> Result<(u64, u32, u64, Bytes), ProtoError> {
    let (r, rest): (PageDataRef, _) = postcard::take_from_bytes(&body[1..])
        .map_err(|reason| ProtoError::Decode { what, reason })?;
    if exact && !rest.is_empty() {
        return Err(ProtoError::Trailing {
            what,
            extra: rest.len(),
        });
    }
    Ok((r.id, r.page, r.offset, body.slice_ref(r.data)))
}

/// The fields of a relay-data message, with the bytes borrowed from the frame.
#[derive(serde::Deserialize)]
struct RelayDataRef<'a> {
    session: u64,
    #[serde(borrow)]
    data: &'a [u8],
}

/// Variant number of `ServerMsg::RelayData` (one varint byte).
const SERVER_RELAY_DATA: u8 = 25;
/// Variant number of `ClientMsg::RelayData` (one varint byte).
const CLIENT_RELAY_DATA: u8 = 24;

fn decode_relay_data(
    body: &Bytes,
    what: &'static str,
    exact: bool,
) -> Result<(u64, Bytes), ProtoError> {
    let (r, rest): (RelayDataRef, _) = postcard::take_from_bytes(&body[1..])
        .map_err(|reason| ProtoError::Decode { what, reason })?;
    if exact && !rest.is_empty() {
        return Err(ProtoError::Trailing {
            what,
            extra: rest.len(),
        });
    }
    Ok((r.session, body.slice_ref(r.data)))
}

/// Decodes a server message; page data keeps pointing into the frame instead of being copied
/// (a terminal receiving a large image copies each byte once less).
///
/// Bytes after the message are ignored here: a newer server may append fields to a
/// message's last struct, and a terminal of this release must still understand the rest.
pub fn decode_server_msg(body: Bytes) -> Result<crate::msg::ServerMsg, ProtoError> {
    const WHAT: &str = "server message";
    if body.first() == Some(&DELIVER_DATA) {
        let (delivery, page, offset, data) = decode_page_data(&body, WHAT, false)?;
        return Ok(crate::msg::ServerMsg::DeliverData {
            delivery: crate::ids::DeliveryId(delivery),
            page,
            offset,
            data,
        });
    }
    if body.first() == Some(&SERVER_RELAY_DATA) {
        let (session, data) = decode_relay_data(&body, WHAT, false)?;
        return Ok(crate::msg::ServerMsg::RelayData { session, data });
    }
    decode(&body, WHAT)
}

/// Decodes a client message; page data keeps pointing into the frame instead of being copied.
///
/// A frame with bytes after its message is refused ([`ProtoError::Trailing`]): the server
/// never keeps bytes it did not ask for, and a piece of page data must not bring a megabyte
/// of padding along with it.
pub fn decode_client_msg(body: Bytes) -> Result<crate::msg::ClientMsg, ProtoError> {
    const WHAT: &str = "client message";
    if body.first() == Some(&PAGE_DATA) {
        let (upload, page, offset, data) = decode_page_data(&body, WHAT, true)?;
        return Ok(crate::msg::ClientMsg::PageData {
            upload,
            page,
            offset,
            data,
        });
    }
    if body.first() == Some(&CLIENT_RELAY_DATA) {
        let (session, data) = decode_relay_data(&body, WHAT, true)?;
        return Ok(crate::msg::ClientMsg::RelayData { session, data });
    }
    decode_exact(&body, WHAT)
}

/// Decodes a frame body that must hold exactly one `what` message and nothing after it.
pub fn decode_exact<M: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<M, ProtoError> {
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|reason| ProtoError::Decode { what, reason })?;
    if !rest.is_empty() {
        return Err(ProtoError::Trailing {
            what,
            extra: rest.len(),
        });
    }
    Ok(msg)
}

/// Decodes a frame body as a `what` message.
pub fn decode<M: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<M, ProtoError> {
    postcard::from_bytes(body).map_err(|reason| ProtoError::Decode { what, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DeliveryId, DistributionId};
    use crate::msg::{ClientMsg, ServerMsg};

    #[test]
    fn data_frames_match_plain_encoding() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, CHUNK_SIZE] {
            let data = Bytes::from(vec![0xA5; len]);
            let plain = OutFrame::encode(&ServerMsg::DeliverData {
                delivery: DeliveryId(77),
                page: 3,
                offset: 1 << 40,
                data: data.clone(),
            })
            .unwrap();
            let fast = OutFrame::encode_with_data(
                &ServerMsg::DeliverData {
                    delivery: DeliveryId(77),
                    page: 3,
                    offset: 1 << 40,
                    data: Bytes::new(),
                },
                data,
            )
            .unwrap();
            let mut a = plain.head.to_vec();
            a.extend_from_slice(&plain.data);
            let mut b = fast.head.to_vec();
            b.extend_from_slice(&fast.data);
            assert_eq!(a, b, "len {len}");
        }
    }

    #[tokio::test]
    async fn frames_round_trip_and_close_cleanly() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let msg = ClientMsg::PageData {
            upload: 9,
            page: 0,
            offset: 0,
            data: Bytes::from_static(b"page bytes"),
        };
        write_msg(&mut a, &msg).await.unwrap();
        write_msg(&mut a, &ClientMsg::Heartbeat).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(b, 1024);
        assert_eq!(r.read_msg::<ClientMsg>("m").await.unwrap(), Some(msg));
        assert_eq!(
            r.read_msg::<ClientMsg>("m").await.unwrap(),
            Some(ClientMsg::Heartbeat)
        );
        assert_eq!(r.read_msg::<ClientMsg>("m").await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_errors() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(&u32::MAX.to_be_bytes()[..]).await.unwrap();
        let mut r = FrameReader::new(b, 1024);
        let err = r.read_frame().await.unwrap_err();
        assert!(
            matches!(err, ProtoError::FrameTooLarge { len, max: 1024 } if len == u32::MAX as usize),
            "{err}"
        );

        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0, 0, 0, 10, 1, 2]).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(b, 1024);
        assert!(matches!(r.read_frame().await, Err(ProtoError::Truncated)));

        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0, 0]).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(b, 1024);
        assert!(matches!(r.read_frame().await, Err(ProtoError::Truncated)));
    }

    #[tokio::test]
    async fn garbage_body_is_a_decode_error_not_a_panic() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        let mut r = FrameReader::new(b, 1024);
        let err = r.read_msg::<ClientMsg>("client message").await.unwrap_err();
        assert!(!err.is_fatal());
        assert!(
            err.to_string().starts_with("malformed client message"),
            "{err}"
        );
    }

    #[test]
    fn borrowed_relay_data_decodes_like_the_plain_decoder() {
        for data in [
            Bytes::new(),
            Bytes::from_static(b"abc"),
            Bytes::from(vec![7u8; 70_000]),
        ] {
            let s = ServerMsg::RelayData {
                session: 300,
                data: data.clone(),
            };
            let body = postcard::to_allocvec(&s).unwrap();
            assert_eq!(decode_server_msg(Bytes::from(body)).unwrap(), s);
            let c = ClientMsg::RelayData {
                session: 300,
                data: data.clone(),
            };
            let body = postcard::to_allocvec(&c).unwrap();
            assert_eq!(decode_client_msg(Bytes::from(body.clone())).unwrap(), c);
            let mut padded = body;
            padded.push(0);
            assert!(decode_client_msg(Bytes::from(padded)).is_err());
            let frame = OutFrame::encode_with_data(
                &ServerMsg::RelayData {
                    session: 300,
                    data: Bytes::new(),
                },
                data,
            )
            .unwrap();
            assert_eq!(frame.wire_len(), OutFrame::encode(&s).unwrap().wire_len());
        }
    }

    #[test]
    fn hostile_vec_length_does_not_allocate() {
        // BeginDistribution (5), id 1, dist 16 bytes, then a groups Vec claiming 2^60 items.
        let mut body = vec![5u8, 1];
        body.extend_from_slice(DistributionId::new_random().as_bytes());
        body.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
        assert!(decode::<ClientMsg>(&body, "client message").is_err());
    }

    #[test]
    fn borrowed_page_data_decodes_like_the_plain_decoder() {
        for len in [0usize, 1, 127, 128, 300, CHUNK_SIZE] {
            let data = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
            let s = ServerMsg::DeliverData {
                delivery: DeliveryId(9),
                page: 2,
                offset: 1 << 33,
                data: data.clone(),
            };
            let body = postcard::to_allocvec(&s).unwrap();
            assert_eq!(decode_server_msg(Bytes::from(body.clone())).unwrap(), s);
            let c = ClientMsg::PageData {
                upload: 3,
                page: 1,
                offset: 77,
                data,
            };
            let body = postcard::to_allocvec(&c).unwrap();
            assert_eq!(decode_client_msg(Bytes::from(body)).unwrap(), c);
        }
        // Other messages go the usual way; a cut page-data frame is a decode error.
        let hb = Bytes::from(postcard::to_allocvec(&ServerMsg::Heartbeat).unwrap());
        assert_eq!(decode_server_msg(hb).unwrap(), ServerMsg::Heartbeat);
        let cut = Bytes::from_static(&[DELIVER_DATA, 9, 2, 5, 200]);
        assert!(matches!(
            decode_server_msg(cut),
            Err(ProtoError::Decode { .. })
        ));
    }

    #[test]
    fn client_frames_with_bytes_after_the_message_are_refused() {
        // One byte of page data followed by a megabyte of padding inside the frame: the
        // server must not accept (and so keep) the frame.
        let c = ClientMsg::PageData {
            upload: 3,
            page: 0,
            offset: 0,
            data: Bytes::from_static(b"x"),
        };
        let mut body = postcard::to_allocvec(&c).unwrap();
        assert_eq!(decode_client_msg(Bytes::from(body.clone())).unwrap(), c);
        body.extend(std::iter::repeat_n(0u8, 1 << 20));
        let err = decode_client_msg(Bytes::from(body)).unwrap_err();
        assert!(
            matches!(err, ProtoError::Trailing { extra, .. } if extra == 1 << 20),
            "{err}"
        );
        assert!(!err.is_fatal(), "the framing is intact: answer and go on");
        // Every other client message too.
        let mut hb = postcard::to_allocvec(&ClientMsg::Heartbeat).unwrap();
        hb.push(0);
        assert!(matches!(
            decode_client_msg(Bytes::from(hb)),
            Err(ProtoError::Trailing { extra: 1, .. })
        ));
        // A terminal stays lenient with what a newer server appends.
        let mut s = postcard::to_allocvec(&ServerMsg::Heartbeat).unwrap();
        s.push(0);
        assert_eq!(
            decode_server_msg(Bytes::from(s)).unwrap(),
            ServerMsg::Heartbeat
        );
    }

    #[test]
    fn length_delimited_codec_reads_our_frames() {
        use tokio_util::codec::{Decoder, LengthDelimitedCodec};
        let frame = OutFrame::encode_with_data(
            &ServerMsg::DeliverData {
                delivery: DeliveryId(1),
                page: 0,
                offset: 0,
                data: Bytes::new(),
            },
            Bytes::from_static(b"abc"),
        )
        .unwrap();
        let mut wire = BytesMut::from(&frame.head[..]);
        wire.extend_from_slice(&frame.data);
        let mut codec = LengthDelimitedCodec::builder()
            .length_field_type::<u32>()
            .new_codec();
        let body = codec.decode(&mut wire).unwrap().unwrap();
        let msg: ServerMsg = decode(&body, "server message").unwrap();
        assert!(matches!(msg, ServerMsg::DeliverData { data, .. } if &data[..] == b"abc"));
        assert!(wire.is_empty());
    }
}
