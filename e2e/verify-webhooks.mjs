// Verifies deliveries peerex made with the published Standard Webhooks library (npm
// `standardwebhooks`), not with peerex's own code. Argument: a JSON file of captured deliveries,
// [{ secrets: ["whsec_..."], headers: { "webhook-id", "webhook-timestamp", "webhook-signature" }, body }].
// Each must verify with every secret given (a rotation's overlap signs with both), and must not
// verify once its body is changed or with a stranger's secret.
import { readFileSync } from "node:fs";
import pkg from "standardwebhooks";

const { Webhook } = pkg;
const deliveries = JSON.parse(readFileSync(process.argv[2], "utf8"));
if (deliveries.length === 0) throw new Error("no deliveries to verify");
const stranger = new Webhook("whsec_" + Buffer.alloc(32, 7).toString("base64"));
for (const d of deliveries) {
  for (const secret of d.secrets) {
    const payload = new Webhook(secret).verify(d.body, d.headers);
    if (typeof payload.type !== "string" || !payload.timestamp || typeof payload.data !== "object") {
      throw new Error(`delivery ${d.headers["webhook-id"]}: payload lacks type, timestamp or data`);
    }
    let refused = false;
    try {
      new Webhook(secret).verify(d.body.replace("}", ' }'), d.headers);
    } catch {
      refused = true;
    }
    if (!refused) throw new Error(`delivery ${d.headers["webhook-id"]}: a changed body verified`);
  }
  let refused = false;
  try {
    stranger.verify(d.body, d.headers);
  } catch {
    refused = true;
  }
  if (!refused) throw new Error(`delivery ${d.headers["webhook-id"]}: a stranger's secret verified`);
}
console.log(`${deliveries.length} deliveries verified with standardwebhooks`);
console.log("all checks passed");
