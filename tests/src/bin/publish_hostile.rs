//! Publishes one message whose header table is nested `DEPTH` levels deep:
//! `publish_hostile EXCHANGE ROUTING_KEY MESSAGE_ID DEPTH`. Used by
//! `tests/hostile_headers.rs`; it runs with deep stacks itself, since lapin
//! serialises the table recursively on its own thread.

use std::process::ExitCode;

use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::BasicPublishOptions,
    types::{AMQPValue, FieldArray, FieldTable},
};
use tollgate_tests::support::amqp_url;

fn main() -> ExitCode {
    tollgate_bus::stack::ensure_deep_stack();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [exchange, route, message_id, depth] = args.as_slice() else {
        eprintln!("usage: publish_hostile EXCHANGE ROUTING_KEY MESSAGE_ID DEPTH");
        return ExitCode::from(2);
    };
    let Ok(depth) = depth.parse::<usize>() else {
        eprintln!("DEPTH must be a number");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("publish_hostile: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(publish(exchange, route, message_id, depth)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publish_hostile: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn publish(exchange: &str, route: &str, message_id: &str, depth: usize) -> lapin::Result<()> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let mut deep = AMQPValue::Void;
    for _ in 0..depth {
        deep = AMQPValue::FieldArray(FieldArray::from(vec![deep]));
    }
    let mut table = FieldTable::default();
    table.insert("deep".into(), deep);
    let properties = BasicProperties::default()
        .with_message_id(message_id.into())
        .with_headers(table);
    let options = BasicPublishOptions::default();
    channel
        .basic_publish(exchange.into(), route.into(), options, b"{}", properties)
        .await?
        .await?;
    connection.close(200, "done".into()).await
}
