//! The request-response codec of Hearth's own protocols (`/hearth/sync/1`, `/hearth/join/1`).
//!
//! Each request and each response is one frame on its own stream: a 4-byte big-endian length,
//! then that many bytes of a versioned postcard message ([`hearth_proto::wire`]). The length is
//! checked against the message kind's limit *before* anything is allocated, and decoding
//! rejects unknown versions and trailing bytes. A frame that breaks a rule is an IO error of
//! kind `InvalidData`: the stream is dropped and the request fails.

use std::io;
use std::marker::PhantomData;

use futures::prelude::*;
use hearth_proto::wire::DecodeError;
use libp2p::StreamProtocol;

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

/// Reads one frame of `T`, checking the length before allocating.
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
    let mut bytes = vec![0u8; len];
    io.read_exact(&mut bytes).await?;
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
