#!/usr/bin/env python3
"""A Tollgate caller in Python (pika + PyJWT), written from README's wire
contract only ("Call it from any language", "The reply path").

It signs its own tokens (HS256, the consumer's secret and kid), declares its
reply queue as RabbitMQ's RPC tutorial does (an empty name: the broker names it
`amq.gen-...`) with a reply key, and plays each case below: a reply, a reply
from the MessagePack service translated to JSON, and each refusal a caller can
provoke. For every case it prints one JSON line: the case, the message id, and
what came back (`error` is the `x-tollgate-error` code, or null for a reply).

    clients/python/.venv/bin/python clients/python/caller.py \\
        --amqp amqp://guest:guest@127.0.0.1:5672/%2f --namespace tollgate \\
        --consumer web --kid web-k1 --secret-base64 ...

Exits 1 when a reply does not come within --timeout seconds.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import uuid

import jwt
import pika


def b64(raw: bytes) -> str:
    """base64url without padding, as the wire contract writes keys and ids."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Caller:
    """One connection, one server-named reply queue, one reply key."""

    def __init__(self, args):
        self.args = args
        self.ns = args.namespace
        self.secret = base64.b64decode(args.secret_base64)
        self.connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        # The broker names the queue (amq.gen-...); the reply key binds it to
        # this caller: the router refuses any request naming it with another key.
        declared = self.channel.queue_declare(queue="", exclusive=True)
        self.reply_queue = declared.method.queue
        self.reply_key = b64(os.urandom(32))
        self.replies = {}
        self.channel.basic_consume(self.reply_queue, self.on_reply, auto_ack=True)

    def on_reply(self, _channel, _method, properties, body):
        self.replies[properties.correlation_id] = (properties, body)

    def token(self, lifetime=300, issued=None, secret=None):
        """A caller token: the consumer claim `key`, `sub`, `iat`, `exp`, `jti`."""
        now = int(time.time()) if issued is None else issued
        claims = {
            "key": self.args.consumer,
            "sub": f"{self.args.consumer}-python",
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(
            claims,
            secret or self.secret,
            algorithm="HS256",
            headers={"kid": self.args.kid},
        )

    def publish(self, route, body, authorization, reply_to, reply_key):
        """Publishes one request (persistent, confirmed); returns its ids."""
        message_id = str(uuid.uuid4())
        correlation_id = str(uuid.uuid4())
        headers = {}
        if authorization is not None:
            headers["authorization"] = authorization
        if reply_key is not None:
            headers["x-tollgate-reply-key"] = reply_key
        self.channel.basic_publish(
            exchange=f"{self.ns}.ingress",
            routing_key=route,
            body=body,
            properties=pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id=message_id,
                correlation_id=correlation_id,
                reply_to=reply_to,
                headers=headers,
            ),
        )
        return message_id, correlation_id

    def call(self, case, route, body, authorization):
        """Publishes and waits for the reply with the request's correlation id."""
        message_id, correlation_id = self.publish(
            route, body, authorization, self.reply_queue, self.reply_key
        )
        deadline = time.monotonic() + self.args.timeout
        while correlation_id not in self.replies:
            if time.monotonic() > deadline:
                print(f"no reply to case {case} within {self.args.timeout} s", file=sys.stderr)
                sys.exit(1)
            self.connection.process_data_events(time_limit=0.1)
        properties, reply = self.replies.pop(correlation_id)
        error = (properties.headers or {}).get("x-tollgate-error")
        report(
            case,
            message_id,
            error=error,
            content_type=properties.content_type,
            body=json.loads(reply),
        )


def report(case, message_id, **fields):
    print(json.dumps({"case": case, "message_id": message_id, **fields}), flush=True)


def order():
    return json.dumps({"customer": {"id": "c-7"}, "items": [{"sku": "gadget", "qty": 2}]})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    parser.add_argument("--namespace", default="tollgate")
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--kid", required=True)
    parser.add_argument("--secret-base64", required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    caller = Caller(args)
    bearer = lambda token: f"Bearer {token}"

    # A reply, and a reply from the MessagePack service, in JSON.
    caller.call("reply", "orders.create", order(), bearer(caller.token()))
    reserve = json.dumps({"sku": "widget", "qty": 2})
    caller.call("msgpack_reply", "inventory.reserve", reserve, bearer(caller.token()))

    # Each refusal a caller can provoke.
    caller.call("token_missing", "orders.create", order(), None)
    an_hour_ago = int(time.time()) - 3600
    expired = caller.token(lifetime=60, issued=an_hour_ago)
    caller.call("token_expired", "orders.create", order(), bearer(expired))
    forged = caller.token(secret=os.urandom(32))
    caller.call("invalid_token", "orders.create", order(), bearer(forged))
    caller.call("bare_token", "orders.create", order(), caller.token())
    caller.call("forbidden", "calc.add", json.dumps({"a": 1, "b": 2}), bearer(caller.token()))
    caller.call("no_route", "ghost.find", "{}", bearer(caller.token()))
    too_large = json.dumps({"pad": "x" * (1024 * 1024 + 1)})
    caller.call("too_large", "orders.create", too_large, bearer(caller.token()))
    caller.call("bad_payload", "inventory.reserve", "{not json", bearer(caller.token()))
    lots = json.dumps({"sku": "widget", "qty": 1000000})
    caller.call("out_of_stock", "inventory.reserve", lots, bearer(caller.token()))

    # A reply queue this request cannot prove is its own: the router answers
    # nothing at all (the queue may be anybody's), only a dead-letter copy.
    someone_else = f"{args.namespace}.caller.{b64(hashlib.sha256(os.urandom(32)).digest())}"
    message_id, _ = caller.publish(
        "orders.create", order(), bearer(caller.token()), someone_else, caller.reply_key
    )
    report("bad_reply_to", message_id, error=None, expect="no reply; a dead-letter copy")

    caller.connection.close()


if __name__ == "__main__":
    main()
