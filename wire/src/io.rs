//! The connection's tasks: the writer (whatever is queued, in one write),
//! the heartbeats, and the reader ([`reader`](crate::reader)).

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use amq_protocol::frame::AMQPFrame;
use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::{mpsc, watch},
};

use crate::{connection::Shared, error::WireError, frames, reader};

/// Most bytes gathered into one write.
const BATCH: usize = 256 * 1024;

/// Spawns the reader, the writer and (with a heartbeat) the heartbeat task.
/// They hold the connection weakly: once every handle is dropped, the queue
/// closes, the writer ends and the socket with it.
pub(crate) fn start<R, W>(
    shared: &Arc<Shared>,
    read: R,
    write: W,
    buf: BytesMut,
    queued: mpsc::UnboundedReceiver<Vec<u8>>,
    heartbeat: Option<Duration>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let weak = Arc::downgrade(shared);
    tokio::spawn(writer(weak.clone(), write, queued, shared.dead()));
    if let Some(every) = heartbeat {
        tokio::spawn(beat(weak.clone(), every / 2, shared.dead()));
    }
    tokio::spawn(reader::run(weak, read, buf, heartbeat.map(|h| h * 2)));
}

async fn writer<W: AsyncWrite + Unpin>(
    shared: Weak<Shared>,
    mut socket: W,
    mut queued: mpsc::UnboundedReceiver<Vec<u8>>,
    mut dead: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            biased;
            next = queued.recv() => match next {
                Some(bytes) => bytes,
                None => break,
            },
            _ = dead.wait_for(|dead| *dead) => break,
        };
        let mut batch = first;
        while batch.len() < BATCH {
            match queued.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if let Err(e) = socket.write_all(&batch).await {
            if let Some(shared) = shared.upgrade() {
                shared.die(WireError::from(e));
            }
            break;
        }
    }
    // Flush what a close left queued (its `connection.close`), best effort.
    while let Ok(bytes) = queued.try_recv() {
        if socket.write_all(&bytes).await.is_err() {
            break;
        }
    }
    let _ = socket.shutdown().await;
}

async fn beat(shared: Weak<Shared>, every: Duration, mut dead: watch::Receiver<bool>) {
    let Ok(frame) = frames::encode(&AMQPFrame::Heartbeat, Vec::new()) else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let Some(shared) = shared.upgrade() else { return };
                if shared.send(frame.clone()).is_err() {
                    return;
                }
            }
            _ = dead.wait_for(|dead| *dead) => return,
        }
    }
}
