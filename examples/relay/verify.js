// A webhook receiver for `rulekit relay` in Node.js (no packages): verifies each delivery's
// Rulekit-Signature, then takes the effect once. docs/effects.md, "The signature".
//
//   export PAYMENTS_WEBHOOK_SECRET=...      # the same value as the relay's
//   node examples/relay/verify.js [PORT]    # default 8090; 0: any free port
//
// Answers 200 for an effect taken (or already taken: a repeat is a success), 400 for a
// delivery whose signature does not verify. A real receiver records the key in its own
// database, in the transaction that carries the effect out; here a Set stands for it.
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

const MAX_BODY = 1 << 20; // an effect is a few hundred bytes

// rawBody: a Buffer of the request's bytes, as read; header: req.headers["rulekit-signature"]
function verifySignature(rawBody, header, secrets, toleranceSeconds = 300) {
  if (!header) throw new Error("no Rulekit-Signature header");
  let t = null;
  const given = [];
  for (const part of header.split(",")) {
    const [key, value] = part.trim().split("=", 2);
    if (key === "t") t = /^\d+$/.test(value) ? Number(value) : NaN;
    else if (key === "v1") given.push(value);
  }
  if (!Number.isInteger(t) || given.length === 0) throw new Error("malformed Rulekit-Signature header");
  if (Math.abs(Date.now() / 1000 - t) > toleranceSeconds) throw new Error("timestamp outside the tolerance");
  for (const secret of [].concat(secrets)) {
    const expected = crypto.createHmac("sha256", secret)
      .update(`${t}.`).update(rawBody).digest();
    for (const v1 of given) {
      const candidate = Buffer.from(v1, "hex");
      if (candidate.length === expected.length && crypto.timingSafeEqual(candidate, expected)) return t;
    }
  }
  throw new Error("no signature matches");
}

function receiver(secrets) {
  const seen = new Set();
  return http.createServer((req, res) => {
    const answer = (status, text) => {
      res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(text + "\n");
    };
    if (req.method !== "POST" || req.url !== "/hooks/rulekit") return answer(404, "not here");
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        answer(413, "too large");
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => {
      const raw = Buffer.concat(chunks); // the raw bytes: the signature covers exactly these
      try {
        verifySignature(raw, req.headers["rulekit-signature"], secrets);
      } catch (e) {
        return answer(400, `refused: ${e.message}`);
      }
      const effect = JSON.parse(raw.toString("utf8"));
      if (seen.has(effect.key)) return answer(200, `${effect.key} already taken`);
      seen.add(effect.key);
      console.log(`effect ${effect.key}: ${effect.name}(${JSON.stringify(effect.args)})`);
      answer(200, `${effect.key} taken`);
    });
  });
}

if (require.main === module) {
  // the secret, and while rotating the previous one too: both are accepted
  const secrets = ["PAYMENTS_WEBHOOK_SECRET_NEW", "PAYMENTS_WEBHOOK_SECRET"]
    .map((name) => process.env[name])
    .filter(Boolean);
  if (secrets.length === 0) {
    console.error("verify.js: export PAYMENTS_WEBHOOK_SECRET (the relay's secret) first");
    process.exit(1);
  }
  const port = process.argv.length > 2 ? Number(process.argv[2]) : 8090;
  const server = receiver(secrets);
  server.listen(port, "127.0.0.1", () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}/hooks/rulekit`);
  });
}

module.exports = { verifySignature, receiver };
