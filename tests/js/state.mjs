// The unmodified Dapr JavaScript SDK against Outrig, in the protocol named by
// OUTRIG_TEST_PROTOCOL (`http` or `grpc`). Run by tests/js_sdk.rs as the app
// under `outrig run`; see tests/python/outrig_test.py for the variables.
// Exits 0 after printing "all checks passed"; a failed check throws.

import assert from "node:assert/strict";
import { CommunicationProtocolEnum, DaprClient } from "@dapr/dapr";

const protocol = process.env.OUTRIG_TEST_PROTOCOL ?? "grpc";
const store = process.env.OUTRIG_TEST_STORE ?? "statestore";
const prefix = process.env.OUTRIG_TEST_PREFIX ?? "js";
const querySupported = process.env.OUTRIG_TEST_QUERY === "1";
const key = (name) => `${prefix}-${name}`;

const client = new DaprClient({
  daprHost: "127.0.0.1",
  daprPort: protocol === "grpc" ? process.env.DAPR_GRPC_PORT : process.env.DAPR_HTTP_PORT,
  communicationProtocol:
    protocol === "grpc" ? CommunicationProtocolEnum.GRPC : CommunicationProtocolEnum.HTTP,
});

/** Runs `call`, which must fail with an error whose text mentions `part`.
 * The SDK throws in gRPC mode; in HTTP mode some calls return `{ error }`. */
async function expectFailure(call, part, what) {
  let error;
  try {
    error = (await call())?.error;
  } catch (err) {
    error = err;
  }
  assert.ok(error, `${what}: expected a failure`);
  const text = `${error?.message ?? ""} ${JSON.stringify(error)}`;
  assert.ok(text.includes(part), `${what}: ${text} lacks ${part}`);
}

// Save and read back, objects and strings.
await client.state.save(store, [
  { key: key("order"), value: { item: "tea", qty: 2 } },
  { key: key("note"), value: "plain text" },
]);
assert.deepEqual(await client.state.get(store, key("order")), { item: "tea", qty: 2 });
assert.equal(await client.state.get(store, key("note")), "plain text");
assert.ok(!(await client.state.get(store, key("never-saved"))), "a missing key reads empty");

// Bulk read with ETags; a stale ETag is refused, the current one accepted.
const [order] = await client.state.getBulk(store, [key("order")]);
assert.equal(order.key, key("order"));
assert.ok(order.etag, "bulk items carry ETags");
await client.state.save(store, [{ key: key("order"), value: { item: "tea", qty: 3 }, etag: order.etag }]);
await expectFailure(
  () => client.state.save(store, [{ key: key("order"), value: { qty: 0 }, etag: order.etag }]),
  "etag",
  "stale ETag on save",
);
await expectFailure(
  () => client.state.delete(store, key("order"), { etag: order.etag }),
  "etag",
  "stale ETag on delete",
);
const [current] = await client.state.getBulk(store, [key("order")]);
await client.state.delete(store, key("order"), { etag: current.etag });
assert.ok(!(await client.state.get(store, key("order"))), "deleted");

// A transaction of upserts and a delete.
await client.state.transaction(store, [
  { operation: "upsert", request: { key: key("a"), value: "A" } },
  { operation: "upsert", request: { key: key("b"), value: "B" } },
  { operation: "delete", request: { key: key("note") } },
]);
assert.equal(await client.state.get(store, key("a")), "A");
assert.equal(await client.state.get(store, key("b")), "B");
assert.ok(!(await client.state.get(store, key("note"))), "deleted in the transaction");

// Query where the store supports it.
if (querySupported) {
  await client.state.save(store, [
    { key: key("p1"), value: { state: "CA" } },
    { key: key("p2"), value: { state: "WA" } },
  ]);
  const answer = await client.state.query(store, { filter: { EQ: { state: "CA" } } });
  assert.deepEqual(answer.results.map((r) => r.key), [key("p1")]);
}

// Metadata, read and set.
const metadata = await client.metadata.get();
assert.equal(metadata.id, process.env.APP_ID);
assert.ok(metadata.components.some((c) => c.name === store), "the store is listed");
await client.metadata.set("jsRun", prefix);
assert.equal((await client.metadata.get()).extended.jsRun, prefix);

// An unknown store fails with Dapr's message.
await expectFailure(
  () => client.state.get("no-such-store", key("x")),
  "state store no-such-store is not found",
  "unknown store",
);

for (const name of ["a", "b", "p1", "p2"]) {
  await client.state.delete(store, key(name));
}
await client.stop();
console.log(`state.mjs (${protocol}): all checks passed`);
