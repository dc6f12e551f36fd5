//! Shipping log lines over TCP (`--log-ship tcp://host:port`), for Logstash's tcp input with
//! the json_lines codec, Vector or Fluent Bit. The log layer hands each JSON line to a
//! bounded queue without waiting; a thread of its own sends them, reconnecting with backoff.
//! When the sink is slow or absent and the queue is full, lines are dropped and counted
//! (`mymonit_log_lines_dropped_total`), so logging never slows requests.

use std::{
    io::Write,
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    },
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the sink.
const QUEUE_LINES: usize = 10_000;

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines dropped because the queue was full or a connection broke mid-line.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A `--log-ship` value that is not usable.
#[derive(Debug, thiserror::Error)]
#[error("log_ship: {0}")]
pub struct LogShipError(String);

/// Where the log layer writes: each event becomes one queued line.
#[derive(Debug, Clone)]
pub struct LogShipper {
    sender: SyncSender<Vec<u8>>,
}

/// Starts shipping to `target` (`tcp://HOST:PORT`).
pub fn start(target: &str) -> Result<LogShipper, LogShipError> {
    let address = target
        .strip_prefix("tcp://")
        .ok_or_else(|| LogShipError(format!("{target:?} is not tcp://HOST:PORT")))?
        .trim_end_matches('/');
    let addresses: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|err| LogShipError(format!("cannot resolve {address:?}: {err}")))?
        .collect();
    if addresses.is_empty() {
        return Err(LogShipError(format!("{address:?} resolves to no address")));
    }
    let (sender, receiver) = sync_channel(QUEUE_LINES);
    std::thread::Builder::new()
        .name("log-ship".into())
        .spawn(move || ship(&addresses, &receiver))
        .map_err(|err| LogShipError(format!("cannot start the shipping thread: {err}")))?;
    Ok(LogShipper { sender })
}

/// Sends lines until the process ends, reconnecting with backoff.
fn ship(addresses: &[SocketAddr], lines: &Receiver<Vec<u8>>) {
    let mut pause = Duration::from_millis(250);
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let connection = addresses
            .iter()
            .find_map(|address| TcpStream::connect_timeout(address, Duration::from_secs(2)).ok());
        let Some(mut stream) = connection else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(10));
            continue;
        };
        pause = Duration::from_millis(250);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        loop {
            let line = match pending.take() {
                Some(line) => line,
                None => match lines.recv() {
                    Ok(line) => line,
                    Err(_) => return,
                },
            };
            if stream.write_all(&line).is_err() {
                // Sent again on the next connection; a half-written line is the sink's loss.
                pending = Some(line);
                break;
            }
        }
    }
}

/// One event's bytes, queued when the log layer is done with it.
pub struct LineWriter {
    sender: SyncSender<Vec<u8>>,
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        match self.sender.try_send(std::mem::take(&mut self.line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogShipper {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            sender: self.sender.clone(),
            line: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_tcp_urls() {
        assert!(start("udp://127.0.0.1:5000").is_err());
        assert!(start("127.0.0.1:5000").is_err());
        assert!(start("tcp://no-port").is_err());
        assert!(start("tcp://127.0.0.1:5170").is_ok());
    }
}
