/** WebSockets are proxied end to end, and a 101 never marks a backend down (unlike in the Go sidekick). */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/backends.ts";
import { startSidekick } from "../helpers/sidekick_process.ts";

function startWsBackend() {
  const seen: { host: string | null; protocol: string | null; xff: string | null }[] = [];
  let closes = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/health") return new Response(null, { status: 200 });
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("plain");
    const protocol = req.headers.get("sec-websocket-protocol");
    seen.push({ host: req.headers.get("host"), protocol, xff: req.headers.get("x-forwarded-for") });
    const { socket, response } = Deno.upgradeWebSocket(req, {
      protocol: protocol?.split(",")[0].trim(),
    });
    socket.onmessage = (e) => socket.send(`backend got ${JSON.stringify(e.data)}`);
    socket.onclose = () => closes++;
    return response;
  });
  return { server, seen, closes: () => closes, url: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("a WebSocket session is relayed both ways with subprotocol and Host", async () => {
  const backend = startWsBackend();
  const sk = await startSidekick([
    "--workers",
    "2",
    "--health-path",
    "/health",
    "-d",
    "200ms",
    backend.url,
  ]);
  try {
    await sk.waitHealthy();
    const wsUrl = sk.url.replace("http", "ws") + "/chat?room=1";
    const ws = new WebSocket(wsUrl, ["chat.v2", "chat.v1"]);
    const messages: string[] = [];
    const opened = new Promise((r) => (ws.onopen = r));
    ws.onmessage = (e) => messages.push(e.data);
    await opened;
    assert.equal(ws.protocol, "chat.v2");
    ws.send("Hello");
    await waitFor(() => messages.length === 1, "echo");
    assert.equal(messages[0], 'backend got "Hello"');
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
    await waitFor(() => backend.closes() === 1, "close propagated to the backend");
    assert.equal(backend.seen[0].host, new URL(sk.url).host);
    assert.equal(backend.seen[0].protocol, "chat.v2, chat.v1");
    assert.ok(backend.seen[0].xff);
    const health = await fetch(sk.url + "/v1/health");
    await health.body?.cancel();
    assert.equal(health.status, 200, "the backend is still UP after a 101");
    assert.equal(await (await fetch(sk.url + "/x")).text(), "plain");
  } finally {
    await sk.stop();
    await backend.server.shutdown();
  }
});
