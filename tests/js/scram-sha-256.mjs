// A SCRAM-SHA-256 client mechanism (RFC 7677) for @xmpp/client's
// saslmechanisms factory, which ships only SCRAM-SHA-1. It keeps the
// expected server signature so the caller can check the server-final
// message carried in <success/>.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

const hmac = (key, data) => createHmac("sha256", key).update(data).digest();
const sha256 = (data) => createHash("sha256").update(data).digest();
const saslname = (s) => s.replace(/=/g, "=3D").replace(/,/g, "=2C");
const parse = (msg) =>
  Object.fromEntries(msg.split(",").map((kv) => [kv[0], kv.slice(2)]));

/** Every instance made, so the caller can read the expected signature. */
export const instances = [];

export default class ScramSha256 {
  constructor() {
    this.stage = "initial";
    instances.push(this);
  }

  response(cred) {
    if (this.stage === "initial") {
      this.cnonce = randomBytes(18).toString("base64");
      this.gs2 = "n,,";
      this.clientFirstBare = `n=${saslname(cred.username || "")},r=${this.cnonce}`;
      this.stage = "challenge";
      return this.gs2 + this.clientFirstBare;
    }
    if (this.stage === "challenge") {
      const { r, s, i } = parse(this.serverFirst);
      if (!r.startsWith(this.cnonce)) throw new Error("SCRAM: server nonce does not extend ours");
      const salted = pbkdf2Sync(cred.password, Buffer.from(s, "base64"), parseInt(i, 10), 32, "sha256");
      const clientKey = hmac(salted, "Client Key");
      const serverKey = hmac(salted, "Server Key");
      const withoutProof = `c=${Buffer.from(this.gs2).toString("base64")},r=${r}`;
      const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
      const signature = hmac(sha256(clientKey), authMessage);
      const proof = Buffer.from(clientKey.map((b, k) => b ^ signature[k])).toString("base64");
      this.serverSignature = hmac(serverKey, authMessage).toString("base64");
      this.stage = "final";
      return `${withoutProof},p=${proof}`;
    }
    return "";
  }

  challenge(chal) {
    this.serverFirst = chal;
    return this;
  }
}
ScramSha256.prototype.name = "SCRAM-SHA-256";
ScramSha256.prototype.clientFirst = true;
