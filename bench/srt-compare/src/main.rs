//! Listens on ADDR with LATENCY_MS of receive latency, takes one SRT caller, writes its messages
//! to stdout until it leaves, then prints the connection's statistics to stderr.
use futures::TryStreamExt;
use srt_tokio::SrtSocket;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect("ADDR");
    let latency: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120);
    let mut sock = SrtSocket::builder()
        .latency(Duration::from_millis(latency))
        .listen_on(addr.as_str())
        .await?;
    let mut out = tokio::io::stdout();
    while let Some((_at, bytes)) = sock.try_next().await? {
        out.write_all(&bytes).await?;
    }
    eprintln!("{:#?}", sock.settings());
    Ok(())
}
