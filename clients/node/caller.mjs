#!/usr/bin/env node
// A Tollgate caller in Node (amqplib + jose), written from README's wire
// contract only ("Call it from any language", "The reply path").
//
// It signs its own tokens (HS256, the consumer's secret and kid), names its
// reply queue `<ns>.caller.<base64url(sha256(secret))>` and proves it with the
// secret in `x-tollgate-reply-key`, and plays each case below: a reply, a
// reply from the MessagePack service translated to JSON, and each refusal a
// caller can provoke. For every case it prints one JSON line: the case, the
// message id, and what came back (`error` is the `x-tollgate-error` code, or
// null for a reply).
//
//   node clients/node/caller.mjs --amqp amqp://guest:guest@127.0.0.1:5672/%2f \
//     --namespace tollgate --consumer web --kid web-k1 --secret-base64 ...
//
// Exits 1 when a reply does not come within --timeout seconds.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import amqp from 'amqplib';
import { SignJWT } from 'jose';

const { values: args } = parseArgs({
  options: {
    amqp: { type: 'string', default: 'amqp://guest:guest@127.0.0.1:5672/%2f' },
    namespace: { type: 'string', default: 'tollgate' },
    consumer: { type: 'string' },
    kid: { type: 'string' },
    'secret-base64': { type: 'string' },
    timeout: { type: 'string', default: '20' },
  },
});
for (const required of ['consumer', 'kid', 'secret-base64']) {
  if (!args[required]) {
    console.error(`--${required} is required`);
    process.exit(2);
  }
}
const ns = args.namespace;
const secret = Buffer.from(args['secret-base64'], 'base64');
const timeoutMs = Number(args.timeout) * 1000;

/** base64url without padding, as the wire contract writes keys and ids. */
const b64 = (bytes) => Buffer.from(bytes).toString('base64url');

/** A reply key: the secret (header value) and the queue it opens. */
function replyKey() {
  const raw = randomBytes(32);
  return { secret: b64(raw), queue: `${ns}.caller.${b64(createHash('sha256').update(raw).digest())}` };
}

/** A caller token: the consumer claim `key`, `sub`, `iat`, `exp`, `jti`. */
async function token({ lifetime = 300, issued = Math.floor(Date.now() / 1000), key = secret } = {}) {
  return new SignJWT({ key: args.consumer, sub: `${args.consumer}-node`, jti: randomUUID() })
    .setProtectedHeader({ alg: 'HS256', kid: args.kid })
    .setIssuedAt(issued)
    .setExpirationTime(issued + lifetime)
    .sign(key);
}

const report = (fields) => console.log(JSON.stringify(fields));

const connection = await amqp.connect(args.amqp);
const channel = await connection.createConfirmChannel();
const own = replyKey();
await channel.assertQueue(own.queue, { exclusive: true, autoDelete: true });
const waiting = new Map();
await channel.consume(
  own.queue,
  (message) => {
    const resolve = message && waiting.get(message.properties.correlationId);
    if (resolve) {
      waiting.delete(message.properties.correlationId);
      resolve(message);
    }
  },
  { noAck: true },
);

/** Publishes one request (persistent, confirmed) with `correlationId`; returns its message id. */
async function publish(route, body, authorization, reply, correlationId = randomUUID()) {
  const messageId = randomUUID();
  const headers = {};
  if (authorization !== null) headers.authorization = authorization;
  if (reply) headers['x-tollgate-reply-key'] = reply.secret;
  channel.publish(`${ns}.ingress`, route, Buffer.from(body), {
    contentType: 'application/json',
    persistent: true,
    messageId,
    correlationId,
    replyTo: reply ? reply.queue : undefined,
    headers,
  });
  await channel.waitForConfirms();
  return messageId;
}

/** Publishes and waits for the reply with the request's correlation id. */
async function call(name, route, body, authorization) {
  let timer;
  const correlationId = randomUUID();
  // Waiting before publishing: the reply can come before the confirm.
  const replied = new Promise((resolve) => waiting.set(correlationId, resolve));
  const messageId = await publish(route, body, authorization, own, correlationId);
  const reply = await Promise.race([
    replied,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no reply to case ${name} within ${args.timeout} s`)), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  report({
    case: name,
    message_id: messageId,
    error: reply.properties.headers?.['x-tollgate-error']?.toString() ?? null,
    content_type: reply.properties.contentType,
    body: JSON.parse(reply.content.toString()),
  });
}

const bearer = (t) => `Bearer ${t}`;
const order = JSON.stringify({ customer: { id: 'c-9' }, items: [{ sku: 'gadget', qty: 1 }] });

try {
  // A reply, and a reply from the MessagePack service, in JSON.
  await call('reply', 'orders.create', order, bearer(await token()));
  await call('msgpack_reply', 'inventory.reserve', JSON.stringify({ sku: 'widget', qty: 2 }), bearer(await token()));

  // Each refusal a caller can provoke.
  await call('token_missing', 'orders.create', order, null);
  const anHourAgo = Math.floor(Date.now() / 1000) - 3600;
  await call('token_expired', 'orders.create', order, bearer(await token({ lifetime: 60, issued: anHourAgo })));
  await call('invalid_token', 'orders.create', order, bearer(await token({ key: randomBytes(32) })));
  await call('bare_token', 'orders.create', order, await token());
  await call('forbidden', 'calc.add', JSON.stringify({ a: 1, b: 2 }), bearer(await token()));
  await call('no_route', 'ghost.find', '{}', bearer(await token()));
  await call('too_large', 'orders.create', JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 1) }), bearer(await token()));
  await call('bad_payload', 'inventory.reserve', '{not json', bearer(await token()));
  await call('out_of_stock', 'inventory.reserve', JSON.stringify({ sku: 'widget', qty: 1000000 }), bearer(await token()));

  // A reply queue this request cannot prove is its own (another caller's
  // queue, this caller's key): the router answers nothing at all, only a
  // dead-letter copy.
  const someoneElse = replyKey();
  const messageId = await publish('orders.create', order, bearer(await token()), {
    queue: someoneElse.queue,
    secret: own.secret,
  });
  report({ case: 'bad_reply_to', message_id: messageId, error: null, expect: 'no reply; a dead-letter copy' });
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await connection.close();
}
