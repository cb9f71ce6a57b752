// A person on Element's own crypto stack (matrix-js-sdk with its Rust crypto), with
// "exclude insecure devices" on, driven by the Python tests: one JSON request per line
// on stdin ({"id", "op", ...}), one JSON answer per line on stdout ({"id", "ok", ...}).
// Logs go to stderr. Ops: start, create_dm, send, wait_message, bodies, devices, rotate,
// hold_keys, release_keys, stop.
import { createInterface } from "node:readline";
import * as sdk from "matrix-js-sdk";
import { OnlySignedDevicesIsolationMode } from "matrix-js-sdk/lib/crypto-api/index.js";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel(process.env.INTEROP_LOG || "warn");
for (const name of ["log", "info", "debug", "warn"]) {
  console[name] = (...args) => process.stderr.write(args.join(" ") + "\n");
}

let client = null;
const returned = new Set(); // event ids already handed to the test
// Room keys going to other devices (to-device messages) can be held back: the SDK is told
// they were delivered, and they are really sent on release_keys (a late key), or never.
let holding = false;
const held = [];

async function fetchFn(input, init) {
  const url = String(input instanceof Request ? input.url : input);
  if (holding && url.includes("/sendToDevice/m.room.encrypted/")) {
    held.push([input, init]);
    return new Response("{}", { status: 200, headers: { "Content-Type": "application/json" } });
  }
  return fetch(input, init);
}

function waitFor(check, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = async () => {
      try {
        const found = await check();
        if (found !== undefined && found !== null && found !== false) return resolve(found);
      } catch (err) {
        return reject(err);
      }
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

async function describe(event) {
  const crypto = client.getCrypto();
  const wire = event.getWireContent();
  const info = event.isEncrypted() ? await crypto.getEncryptionInfoForEvent(event) : null;
  const deviceId = wire.device_id || null;
  let signedByOwner = null;
  if (deviceId) {
    const status = await crypto.getDeviceVerificationStatus(event.getSender(), deviceId);
    signedByOwner = status ? status.signedByOwner : false;
  }
  return {
    event_id: event.getId(),
    sender: event.getSender(),
    body: event.getContent().body ?? null,
    content: event.getContent(),
    encrypted: event.isEncrypted(),
    decryption_failure: event.isDecryptionFailure(),
    shield_colour: info ? info.shieldColour : null,
    shield_reason: info ? info.shieldReason : null,
    device_id: deviceId,
    signed_by_owner: signedByOwner,
  };
}

const ops = {
  async start({ homeserver, user_id, access_token, device_id, password, bootstrap }) {
    client = sdk.createClient({
      baseUrl: homeserver, userId: user_id, accessToken: access_token, deviceId: device_id,
      fetchFn, timelineSupport: true,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    client.getCrypto().setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
    const prepared = new Promise((resolve) => {
      client.on(sdk.ClientEvent.Sync, (state) => {
        if (state === "PREPARED" || state === "SYNCING") resolve();
      });
    });
    await client.startClient({ initialSyncLimit: 20, pollTimeout: 1000 });
    await prepared;
    if (bootstrap) {
      // As Element does on a person's first device: their own cross-signing identity.
      await client.getCrypto().bootstrapCrossSigning({
        authUploadDeviceSigningKeys: (makeRequest) => makeRequest({
          type: "m.login.password", password,
          identifier: { type: "m.id.user", user: user_id } }),
      });
    }
    return { device_id: client.getDeviceId() };
  },

  async create_dm({ invite }) {
    const { room_id } = await client.createRoom({
      is_direct: true, preset: "trusted_private_chat", invite: [invite],
      initial_state: [{ type: "m.room.encryption", state_key: "",
                        content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    const direct = { [invite]: [room_id] };
    await client.setAccountData("m.direct", direct);
    await waitFor(async () => client.getRoom(room_id) &&
      (await client.getCrypto().isEncryptionEnabledInRoom(room_id)), 10000, "the new room");
    return { room_id };
  },

  async send({ room_id, body }) {
    const { event_id } = await client.sendTextMessage(room_id, body);
    return { event_id };
  },

  // The first message from `sender` in the room not handed over before, containing
  // `contains` (if given), once decrypted or once its decryption has failed for good.
  async wait_message({ room_id, sender, contains, timeout_ms }) {
    const found = await waitFor(async () => {
      const room = client.getRoom(room_id);
      if (!room) return null;
      for (const event of room.getLiveTimeline().getEvents()) {
        if (returned.has(event.getId()) || event.getSender() !== sender) continue;
        if (event.isBeingDecrypted() || event.shouldAttemptDecryption()) continue;
        if (event.getType() !== "m.room.message" && !event.isDecryptionFailure()) continue;
        const body = event.getContent().body;
        if (contains && !(typeof body === "string" && body.includes(contains))) continue;
        return event;
      }
      return null;
    }, timeout_ms ?? 20000, `a message from ${sender}${contains ? ` with "${contains}"` : ""}`);
    returned.add(found.getId());
    return describe(found);
  },

  async devices({ user_id }) {
    const crypto = client.getCrypto();
    const all = await crypto.getUserDeviceInfo([user_id], true);
    const result = [];
    for (const deviceId of (all.get(user_id) || new Map()).keys()) {
      const status = await crypto.getDeviceVerificationStatus(user_id, deviceId);
      result.push({ device_id: deviceId, signed_by_owner: Boolean(status?.signedByOwner) });
    }
    return { devices: result };
  },

  // Everything `sender` said in the room that this device can read, oldest first.
  async bodies({ room_id, sender }) {
    const room = client.getRoom(room_id);
    const events = room ? room.getLiveTimeline().getEvents() : [];
    return { bodies: events.filter((e) => e.getSender() === sender &&
      e.getType() === "m.room.message").map((e) => e.getContent().body) };
  },

  // A fresh room key for the next message (so it must be shared again).
  async rotate({ room_id }) {
    await client.getCrypto().forceDiscardSession(room_id);
    return {};
  },

  async hold_keys() {
    holding = true;
    return {};
  },

  async release_keys() {
    holding = false;
    const sent = held.splice(0);
    for (const [input, init] of sent) {
      const response = await fetch(input, init);
      if (!response.ok) throw new Error(`late key refused: ${response.status}`);
    }
    return { released: sent.length };
  },

  async stop() {
    if (client) client.stopClient();
    setTimeout(() => process.exit(0), 50);
    return {};
  },
};

const lines = createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  const reply = (body) => process.stdout.write(JSON.stringify({ id: request.id, ...body }) + "\n");
  try {
    reply({ ok: true, ...(await ops[request.op](request)) });
  } catch (err) {
    reply({ ok: false, error: String(err && err.stack ? err.stack : err) });
  }
});
lines.on("close", () => process.exit(0));
