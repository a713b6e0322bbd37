//! Plain HTTP/1.1 connections to the server under test.
//!
//! The generator opens its connections itself (one hyper `SendRequest` per TCP stream)
//! rather than going through a pool: it wants exactly N keep-alive connections, each
//! carrying one request at a time, and nothing between the timer and the socket.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go: socket address, `Host` header and path.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    /// Resolves an `http://host:port/path` URL (plain HTTP only).
    pub async fn resolve(url: &str) -> Result<Target> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("Failed to parse URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported, got {url:?}");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("URL {url:?} has no host"))?;
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("Failed to resolve {host}:{port}"))?
            .next()
            .with_context(|| format!("{host}:{port} resolves to no address"))?;
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Target {
            addr,
            host: authority.as_str().to_owned(),
            path,
        })
    }
}

/// Opens one keep-alive connection; its driver runs on its own task until the peer closes.
pub async fn connect<B>(addr: SocketAddr) -> Result<SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("Failed to connect to {addr}"))?;
    stream
        .set_nodelay(true)
        .context("Failed to set TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .context("Failed HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped; the
        // request that notices reports the error.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One GET on a fresh connection: status and body.
pub async fn get(url: &str) -> Result<(u16, Bytes)> {
    let target = Target::resolve(url).await?;
    let mut sender = connect::<Empty<Bytes>>(target.addr).await?;
    let request = Request::get(target.path.as_str())
        .header(hyper::header::HOST, target.host.as_str())
        .body(Empty::new())
        .context("Failed to build GET request")?;
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("GET {url} failed"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .with_context(|| format!("Failed to read the body of GET {url}"))?
        .to_bytes();
    Ok((status, body))
}

/// The request body type the load phase sends.
pub type LoadBody = Full<Bytes>;
