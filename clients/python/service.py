#!/usr/bin/env python3
"""A Tollgate service in Python (pika + PyJWT), written from README's
service-side wire contract only ("Serve from any language").

It serves `<service>.add` ({"a": 2, "b": 3} -> {"sum": 5, "caller": ...})
behind the router: declares its queue and control queue, registers with a
registration token it signs itself and waits for a router's acceptance,
heartbeats, verifies the bus assertion of every message with the bus's
public key (Ed25519) or its own service secret (HS256), refuses a message that did not pass the bus (an error reply to a
queue provably the sender's, a dead-letter copy), hands a message whose
assertion expired while it waited back to the routers (a reject without
requeue: they re-admit it), answers through `<ns>.replies` with the reply
context, and deregisters on SIGTERM.

It prints one JSON line per event: {"event": "ready", ...} once admitted,
{"event": "refused", ...} for each message it refused, {"event":
"handed_back", ...} for each it handed back, {"event": "stopped"}.

    clients/python/.venv/bin/python clients/python/service.py --namespace tollgate \\
        --service calc --consumer calc-svc --kid calc-svc-k1 --secret-base64 ... \\
        --bus-key bus.pub.pem [--bus-secret-file calc.secret]
"""

import argparse
import base64
import hashlib
import json
import signal
import sys
import time
import uuid

import jwt
import pika

ASSERTION_TYP = "tollgate-assertion+jwt"
ASSERTION_ISSUER = "tollgate-bus"
ASSERTION_LEEWAY_SECS = 5
REGISTRATION_AUDIENCE = "tollgate-registration"
NOT_FROM_BUS = "not_from_bus"
BROKER_HEADERS = ("x-death", "x-delivery-count")
BROKER_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")


def text(value):
    """A header value as text (pika hands long strings over as bytes or str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


class NotFromBus(Exception):
    """The message carries no valid bus assertion for itself; `detail` says why."""

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


class Outlived(Exception):
    """A genuine bus assertion for this message that expired while it waited
    in the queue: the message goes back to the routers (a reject without
    requeue), which re-admit it with a fresh one."""


class Service:
    def __init__(self, args):
        self.args = args
        self.ns = args.namespace
        self.name = args.service
        self.secret = base64.b64decode(args.secret_base64)
        self.bus_key = None
        if args.bus_key:
            with open(args.bus_key, "rb") as pem:
                self.bus_key = pem.read()
        # The service's own assertion secret (`tollgate keys service-secret`):
        # 32 bytes as unpadded base64url.
        self.bus_secret = None
        if args.bus_secret_file:
            with open(args.bus_secret_file) as f:
                encoded = f.read().strip()
            self.bus_secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        self.instance = uuid.uuid4().hex
        self.queue = f"{self.ns}.svc.{self.name}"
        self.control_queue = f"{self.ns}.svc-ctl.{self.instance}"
        self.replies = f"{self.ns}.replies"
        self.admitted_by = None
        self.stopping = False
        self.connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    # === Queues and registration ===

    def declare(self):
        self.channel.queue_declare(
            self.queue, durable=True, arguments={"x-dead-letter-exchange": f"{self.ns}.dlx"}
        )
        self.channel.queue_bind(self.queue, f"{self.ns}.deliver", routing_key=self.name)
        self.channel.queue_declare(self.control_queue, exclusive=True, auto_delete=True)
        self.channel.queue_bind(self.control_queue, f"{self.ns}.control", routing_key="")
        self.channel.basic_consume(self.control_queue, self.on_control, auto_ack=True)

    def registration_token(self):
        now = int(time.time())
        claims = {
            "key": self.args.consumer,
            "sub": f"{self.name}-{self.instance}",
            "aud": REGISTRATION_AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.secret, algorithm="HS256", headers={"kid": self.args.kid})

    def registration(self, kind):
        registration = {
            "kind": kind,
            "service": self.name,
            "instance": self.instance,
            "content_type": "application/json",
            "schema_version": "1",
            "ttl_secs": 3 * self.args.heartbeat,
        }
        if self.bus_secret is not None:
            # Routers then sign this service's assertions with its secret.
            registration["assertion"] = "hs256"
        return registration

    def announce(self, body):
        self.channel.basic_publish(
            exchange=f"{self.ns}.control",
            routing_key="",
            body=json.dumps(body),
            properties=pika.BasicProperties(
                content_type="application/json",
                headers={"authorization": f"Bearer {self.registration_token()}"},
            ),
        )

    def on_control(self, _channel, _method, _properties, body):
        try:
            message = json.loads(body)
        except ValueError:
            return
        kind = message.get("kind")
        if kind == "discover":
            self.announce(self.registration("register"))
        elif kind in ("accepted", "refused") and message.get("instance") == self.instance:
            if kind == "accepted":
                self.admitted_by = self.admitted_by or message.get("router")
            elif self.admitted_by is None:
                emit("not_admitted", code=message.get("code"), reason=message.get("reason"))
                sys.exit(1)

    def register(self, timeout=30.0):
        """Registers until a router accepts (asking again every 2 s)."""
        deadline = time.monotonic() + timeout
        while self.admitted_by is None:
            if time.monotonic() > deadline:
                emit("not_admitted", reason=f"no router answered within {timeout} s")
                sys.exit(1)
            self.announce(self.registration("register"))
            asked = time.monotonic()
            while self.admitted_by is None and time.monotonic() - asked < 2.0:
                self.connection.process_data_events(time_limit=0.1)

    def heartbeat(self):
        if not self.stopping:
            self.announce(self.registration("heartbeat"))
            self.connection.call_later(self.args.heartbeat, self.heartbeat)

    # === Requests ===

    def verify(self, properties, headers):
        """The caller (the assertion's claims) when the message passed the bus."""
        route = text(headers.get("x-tollgate-route")) or ""
        service, _, method = route.partition(".")
        if service != self.name or not method:
            raise NotFromBus("route_mismatch")
        token = text(headers.get("x-tollgate-assertion"))
        if not token:
            raise NotFromBus("assertion_missing")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != ASSERTION_TYP:
                raise NotFromBus("algorithm_or_typ")
            # The key follows from the algorithm this service holds a key for,
            # never the other way round: the public key is no HMAC secret.
            if header.get("alg") == "EdDSA" and self.bus_key is not None:
                key, algorithm = self.bus_key, "EdDSA"
            elif header.get("alg") == "HS256" and self.bus_secret is not None and "kid" not in header:
                key, algorithm = self.bus_secret, "HS256"
            else:
                raise NotFromBus("algorithm_or_typ")

            def decode(**check):
                return jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    issuer=ASSERTION_ISSUER,
                    leeway=ASSERTION_LEEWAY_SECS,
                    options={"require": ["exp", "iss"], **check},
                )

            try:
                claims, outlived = decode(), False
            except jwt.ExpiredSignatureError:
                # Signed by the bus, only too old: checked as issued below.
                claims, outlived = decode(verify_exp=False), True
        except jwt.InvalidTokenError as e:
            raise NotFromBus(type(e).__name__) from e
        if claims.get("route") != route or claims.get("mid") != properties.message_id:
            raise NotFromBus("claims_invalid")
        if outlived:
            raise Outlived()
        return method, claims

    def on_request(self, channel, method, properties, body):
        headers = properties.headers or {}
        try:
            name, caller = self.verify(properties, headers)
        except Outlived:
            channel.basic_reject(method.delivery_tag, requeue=False)
            emit("handed_back", message_id=properties.message_id)
            return
        except NotFromBus as refused:
            self.refuse(properties, headers, body, refused.detail)
            channel.basic_ack(method.delivery_tag)
            return
        try:
            answer, error = self.handle(name, caller, body), None
        except ValueError as e:
            answer, error = None, ("bad_payload", str(e))
        except LookupError:
            answer, error = None, ("unknown_method", f"service {self.name} has no method {name}")
        context = headers.get("x-tollgate-reply-context")
        if context is not None:
            reply_headers = {"x-tollgate-reply-context": context}
            if error:
                reply_headers["x-tollgate-error"] = error[0]
                answer = {"error": {"code": error[0], "stage": "service", "message": error[1]}}
            self.send(self.reply_queue(properties), properties, answer, reply_headers)
        channel.basic_ack(method.delivery_tag)

    def reply_queue(self, properties):
        """Where a reply goes: the request's reply_to when a router set it (the
        replies queue, or the holding router's own `<ns>.replies.<router>` for a
        held call, whose reply only that router takes), else the replies queue."""
        reply_to = properties.reply_to or ""
        if reply_to == self.replies or reply_to.startswith(self.replies + "."):
            return reply_to
        return self.replies

    def handle(self, method, caller, body):
        if method != "add":
            raise LookupError(method)
        request = json.loads(body)
        if not isinstance(request, dict) or not all(
            isinstance(request.get(k), (int, float)) for k in ("a", "b")
        ):
            raise ValueError("expected {\"a\": number, \"b\": number}")
        return {"sum": request["a"] + request["b"], "caller": caller.get("consumer")}

    def send(self, queue, request, body, headers):
        """A reply (transient) to `queue`, correlated with `request`."""
        self.channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=json.dumps(body),
            properties=pika.BasicProperties(
                content_type="application/json",
                correlation_id=request.correlation_id or request.message_id,
                delivery_mode=1,
                headers=headers,
            ),
        )

    # === Refusals ===

    def own_reply_to(self, properties, headers):
        """The sender's reply_to when the router could have set it, else None."""
        reply_to = properties.reply_to
        if not reply_to:
            return None
        if reply_to == self.replies or reply_to.startswith("amq.rabbitmq.reply-to"):
            return reply_to
        prefix = f"{self.ns}.caller."
        key = text(headers.get("x-tollgate-reply-key"))
        if reply_to.startswith(prefix) and key:
            try:
                secret = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            except ValueError:
                return None
            if len(secret) == 32 and b64(hashlib.sha256(secret).digest()) == reply_to[len(prefix):]:
                return reply_to
        return None

    def refuse(self, properties, headers, body, detail):
        reason = "the message did not pass the bus"
        reply_to = self.own_reply_to(properties, headers)
        if reply_to:
            reply_headers = {"x-tollgate-error": NOT_FROM_BUS}
            if "x-tollgate-reply-context" in headers:
                reply_headers["x-tollgate-reply-context"] = headers["x-tollgate-reply-context"]
            error = {"error": {"code": NOT_FROM_BUS, "stage": "service", "message": reason}}
            self.send(reply_to, properties, error, reply_headers)
        route = text(headers.get("x-tollgate-route")) or ""
        service, _, method = route.partition(".")
        kept = {
            name: value
            for name, value in headers.items()
            if not name.lower().startswith("x-tollgate-")
            and name.lower() not in BROKER_HEADERS
            and not name.lower().startswith(BROKER_HEADER_PREFIXES)
            and name.lower() != "authorization"
        }
        kept.update(
            {
                "x-tollgate-code": NOT_FROM_BUS,
                "x-tollgate-stage": "service",
                "x-tollgate-reason": f"{reason} ({detail})",
                "x-tollgate-route": route if service == self.name and method else "-",
            }
        )
        # Confirmed by the broker (confirm_delivery) before the ack.
        self.channel.basic_publish(
            exchange="",
            routing_key=f"{self.ns}.dead",
            body=body,
            properties=pika.BasicProperties(
                message_id=properties.message_id,
                correlation_id=properties.correlation_id,
                content_type=properties.content_type,
                reply_to=reply_to,
                delivery_mode=2,
                headers=kept,
            ),
        )
        emit("refused", message_id=properties.message_id, code=NOT_FROM_BUS, detail=detail)

    # === Life ===

    def run(self):
        self.declare()
        self.register()
        self.channel.basic_qos(prefetch_count=16)
        self.channel.basic_consume(self.queue, self.on_request)
        self.connection.call_later(self.args.heartbeat, self.heartbeat)
        emit("ready", service=self.name, instance=self.instance, router=self.admitted_by)
        while not self.stopping:
            self.connection.process_data_events(time_limit=0.2)
        self.announce({"kind": "deregister", "service": self.name, "instance": self.instance})
        self.connection.close()
        emit("stopped")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    parser.add_argument("--namespace", default="tollgate")
    parser.add_argument("--service", default="calc")
    parser.add_argument("--consumer", required=True, help="the service account")
    parser.add_argument("--kid", required=True)
    parser.add_argument("--secret-base64", required=True)
    parser.add_argument("--bus-key", help="the bus's public key (PEM): Ed25519 assertions")
    parser.add_argument(
        "--bus-secret-file", help="this service's assertion secret: HS256 assertions"
    )
    parser.add_argument("--heartbeat", type=int, default=5, help="seconds between heartbeats")
    args = parser.parse_args()
    if not args.bus_key and not args.bus_secret_file:
        parser.error("give --bus-key, --bus-secret-file or both")
    service = Service(args)

    def stop(_signum, _frame):
        service.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()


if __name__ == "__main__":
    main()
