//! Round trips through RabbitMQ with this client and with lapin, in
//! alternating rounds: a requester publishes 1 KiB to a queue, a responder
//! (its own connection) consumes it and publishes it to the requester's
//! queue, the requester consumes it, and so on. Prints the median and p99
//! round trip of each client.
//!
//! `cargo run --release -p tollgate-wire --example round_trip [rounds] [trips]`

use std::{error::Error, str::FromStr, time::Instant};

use futures_util::StreamExt;
use lapin::{
    BasicProperties as LapinProperties, Connection as LapinConnection, ConnectionProperties,
    options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions},
    types::FieldTable as LapinTable,
};
use tollgate_wire::{AMQPUri, BasicProperties, Connection, FieldTable, QueueOptions};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const BODY: [u8; 1024] = [b'x'; 1024];

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let trips: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.extend(wire_round(trips).await?);
        theirs.extend(lapin_round(trips).await?);
    }
    for (name, mut times) in [("tollgate-wire", ours), ("lapin", theirs)] {
        times.sort_unstable();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "{name:>14}: p50 {:>4} µs  p99 {:>5} µs  ({} round trips)",
            at(0.5),
            at(0.99),
            times.len()
        );
    }
    Ok(())
}

async fn wire_round(trips: usize) -> Result<Vec<u128>> {
    let uri = AMQPUri::from_str(URL)?;
    let (a, b) = (
        Connection::open(&uri, "rt-requester").await?,
        Connection::open(&uri, "rt-responder").await?,
    );
    let (ca, cb) = (a.channel().await?, b.channel().await?);
    let id = uuid::Uuid::new_v4().simple();
    let (requests, replies) = (format!("rt-wire-req-{id}"), format!("rt-wire-rep-{id}"));
    for q in [&requests, &replies] {
        ca.queue_declare(q, QueueOptions::default(), FieldTable::default())
            .await?;
    }
    let mut served = cb.consume(&requests, "s", FieldTable::default()).await?;
    let responder = {
        let (cb, replies) = (cb.clone(), replies.clone());
        tokio::spawn(async move {
            while let Some(d) = served.next().await {
                let sent = cb.publish("", &replies, false, BasicProperties::default(), &d.body);
                if sent.is_err() || d.acker.ack().is_err() {
                    break;
                }
            }
        })
    };
    let mut answers = ca.consume(&replies, "r", FieldTable::default()).await?;
    let mut times = Vec::with_capacity(trips);
    for _ in 0..trips {
        let start = Instant::now();
        ca.publish("", &requests, false, BasicProperties::default(), &BODY)?;
        let d = answers.next().await.ok_or("the reply consumer ended")?;
        d.acker.ack()?;
        times.push(start.elapsed().as_micros());
    }
    for q in [&requests, &replies] {
        ca.queue_delete(q).await?;
    }
    responder.abort();
    a.close().await?;
    b.close().await?;
    Ok(times)
}

async fn lapin_round(trips: usize) -> Result<Vec<u128>> {
    let (a, b) = (
        LapinConnection::connect(URL, ConnectionProperties::default()).await?,
        LapinConnection::connect(URL, ConnectionProperties::default()).await?,
    );
    let (ca, cb) = (a.create_channel().await?, b.create_channel().await?);
    let id = uuid::Uuid::new_v4().simple();
    let (requests, replies) = (format!("rt-lapin-req-{id}"), format!("rt-lapin-rep-{id}"));
    for q in [&requests, &replies] {
        ca.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            LapinTable::default(),
        )
        .await?;
    }
    let mut served = cb
        .basic_consume(
            requests.as_str().into(),
            "s".into(),
            BasicConsumeOptions::default(),
            LapinTable::default(),
        )
        .await?;
    let responder = {
        let (cb, replies) = (cb.clone(), replies.clone());
        tokio::spawn(async move {
            while let Some(Ok(d)) = served.next().await {
                let sent = cb
                    .basic_publish(
                        "".into(),
                        replies.as_str().into(),
                        BasicPublishOptions::default(),
                        &d.data,
                        LapinProperties::default(),
                    )
                    .await;
                if sent.is_err() || d.ack(BasicAckOptions::default()).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut answers = ca
        .basic_consume(
            replies.as_str().into(),
            "r".into(),
            BasicConsumeOptions::default(),
            LapinTable::default(),
        )
        .await?;
    let mut times = Vec::with_capacity(trips);
    for _ in 0..trips {
        let start = Instant::now();
        ca.basic_publish(
            "".into(),
            requests.as_str().into(),
            BasicPublishOptions::default(),
            &BODY,
            LapinProperties::default(),
        )
        .await?;
        let d = answers.next().await.ok_or("the reply consumer ended")??;
        d.ack(BasicAckOptions::default()).await?;
        times.push(start.elapsed().as_micros());
    }
    for q in [&requests, &replies] {
        let _ = ca.queue_delete(q.as_str().into(), Default::default()).await;
    }
    responder.abort();
    let _ = a.close(200, "done".into()).await;
    let _ = b.close(200, "done".into()).await;
    Ok(times)
}
