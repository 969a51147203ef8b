//! The request-response codec of Hearth's own protocols (`/hearth/sync/3`, `/hearth/join/1`).
//!
//! Each request and each response is one frame on its own stream: a 4-byte big-endian length,
//! then that many bytes of a versioned postcard message ([`hearth_proto::wire`]). The length is
//! checked against the message kind's limit *before* anything is read, the buffer grows only
//! as bytes arrive (a declared length reserves nothing), and decoding
//! rejects unknown versions and trailing bytes. A frame that breaks a rule is an IO error of
//! kind `InvalidData`: the stream is dropped and the request fails.

use std::io;
use std::marker::PhantomData;

use futures::prelude::*;
use hearth_proto::wire::DecodeError;
use libp2p::StreamProtocol;

/// The capacity a frame buffer starts with; it grows as the frame's bytes arrive.
pub const INITIAL_FRAME_CAPACITY: usize = 8 * 1024;

/// A message that travels in one frame.
pub trait Frame: Sized + Send + Sync + 'static {
    /// The largest encoding, in bytes (the frame's length prefix not counted).
    const MAX_LEN: usize;
    /// What the message is called in errors.
    const WHAT: &'static str;
    /// The encoding.
    fn to_bytes(&self) -> Vec<u8>;
    /// Decodes bytes of at most [`Frame::MAX_LEN`].
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// Reads one frame of `T`, checking the declared length before reading and growing the buffer
/// only as bytes arrive.
pub async fn read_frame<T: Frame, R: AsyncRead + Unpin + Send>(io: &mut R) -> io::Result<T> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > T::MAX_LEN {
        return Err(invalid(format!(
            "the {} is {len} bytes, more than the limit of {}",
            T::WHAT,
            T::MAX_LEN
        )));
    }
    // The buffer grows as bytes arrive (never past `len`, checked above): a peer that
    // declares a large frame and sends nothing costs nothing.
    let mut bytes = Vec::with_capacity(len.min(INITIAL_FRAME_CAPACITY));
    io.take(len as u64).read_to_end(&mut bytes).await?;
    if bytes.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the {} ended after {} of its {len} bytes",
                T::WHAT,
                bytes.len()
            ),
        ));
    }
    T::from_bytes(&bytes).map_err(|e| invalid(e.to_string()))
}

/// Writes one frame of `T` and closes the writing side.
pub async fn write_frame<T: Frame, W: AsyncWrite + Unpin + Send>(
    io: &mut W,
    message: &T,
) -> io::Result<()> {
    let bytes = message.to_bytes();
    if bytes.len() > T::MAX_LEN {
        return Err(invalid(format!(
            "the {} would be {} bytes, more than the limit of {}",
            T::WHAT,
            bytes.len(),
            T::MAX_LEN
        )));
    }
    // The limit is far below u32::MAX (checked just above).
    let len = u32::try_from(bytes.len()).map_err(|_| invalid("frame too long".into()))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A request-response codec for one request type and one response type.
#[derive(Debug)]
pub struct Codec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> Default for Codec<Req, Resp> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Req, Resp> Clone for Codec<Req, Resp> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<Req: Frame, Resp: Frame> libp2p::request_response::Codec for Codec<Req, Resp> {
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;
    use crate::protocol::SyncResponseFrame;

    /// A stream that declares a frame of `declared` bytes, then delivers `body` 100 bytes at a
    /// time, recording the largest buffer the reader offered it.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        largest_offer: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.largest_offer = self.largest_offer.max(buf.len());
            let n = buf.len().min(100).min(self.bytes.len() - self.at);
            let at = self.at;
            buf[..n].copy_from_slice(&self.bytes[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn a_declared_length_reserves_nothing_before_the_bytes_arrive() {
        futures::executor::block_on(async {
            // Declares the largest sync response, then sends 1,000 bytes and ends.
            let declared = SyncResponseFrame::MAX_LEN as u32;
            let mut bytes = declared.to_be_bytes().to_vec();
            bytes.extend(std::iter::repeat_n(0u8, 1_000));
            let mut io = Trickle {
                bytes,
                at: 0,
                largest_offer: 0,
            };
            let err = read_frame::<SyncResponseFrame, _>(&mut io)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            assert!(err.to_string().contains("ended after 1000"), "{err}");
            // The buffer offered never came near the declared 4 MiB.
            assert!(
                io.largest_offer <= 2 * INITIAL_FRAME_CAPACITY,
                "the reader offered a buffer of {} bytes",
                io.largest_offer
            );
        });
    }
}
