// The account page's proof check: recompute, in this browser, every hash from the account's fields up to
// the state root of the block header the proof claims, following docs/encoding.md sections 3, 4 and 8.
// SHA-256 is written out here (not crypto.subtle) so the check also runs on pages served over plain HTTP.
"use strict";

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

function sha256(data) {
  const len = data.length;
  const total = ((len + 9 + 63) >> 6) << 6;
  const buf = new Uint8Array(total);
  buf.set(data);
  buf[len] = 0x80;
  const bits = len * 8;
  const view = new DataView(buf.buffer);
  view.setUint32(total - 8, Math.floor(bits / 0x100000000));
  view.setUint32(total - 4, bits >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(4 * i, h[i]);
  return out;
}

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
function unhex(s) {
  if (typeof s !== "string" || !/^([0-9a-f]{2})*$/.test(s)) throw new Error("not lowercase hex: " + String(s).slice(0, 20));
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
function u32(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; }
function u64(value) {
  const n = BigInt(value);
  if (n < 0n || n >= (1n << 64n)) throw new Error("not a u64: " + value);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n);
  return b;
}

// bech32m (BIP-350) with the "al" prefix: the 20-byte account id behind an address.
const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
function polymod(values) {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= gen[i];
  }
  return chk >>> 0;
}
function decodeAddress(address) {
  const a = address.toLowerCase();
  const sep = a.lastIndexOf("1");
  const hrp = a.slice(0, sep);
  if (hrp !== "al" || a.length !== 41) throw new Error("not an al1 address");
  const data = Array.from(a.slice(sep + 1), (c) => {
    const v = CHARSET.indexOf(c);
    if (v < 0) throw new Error("bad address character " + c);
    return v;
  });
  const expanded = [...Array.from(hrp, (c) => c.charCodeAt(0) >> 5), 0, ...Array.from(hrp, (c) => c.charCodeAt(0) & 31)];
  if (polymod([...expanded, ...data]) !== 0x2bc830a3) throw new Error("address checksum fails");
  let acc = 0, bits = 0;
  const out = [];
  for (const v of data.slice(0, -6)) {
    acc = (acc << 5) | v; bits += 5;
    if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 0xff); }
  }
  if (out.length !== 20) throw new Error("address is not 20 bytes");
  return new Uint8Array(out);
}

const depth = (n) => (n > 1 ? Math.ceil(Math.log2(n)) : 0);

// Recompute the state root from one account proof document; returns the steps taken and the root.
function accountRoot(address, doc) {
  const steps = [];
  if (doc.address !== address) throw new Error("the proof is for another address: " + doc.address);
  const id = decodeAddress(address);
  const acct = doc.account;
  const value = concat(u64(acct.balance), u64(acct.nonce), u64(acct.stake), u64(acct.unbonding));
  const key = concat(new TextEncoder().encode("acct/"), id);
  let h = sha256(concat(new Uint8Array([0]), u32(key.length), key, value));
  steps.push(`leaf = H(00 ‖ u32 len ‖ "acct/" ‖ ${hex(id)} ‖ balance ${acct.balance}, nonce ${acct.nonce}, stake ${acct.stake}, unbonding ${acct.unbonding}) = ${hex(h)}`);
  const p = doc.proof;
  if (!Number.isInteger(p.size) || !Number.isInteger(p.index) || p.size < 1 || p.index < 0 || p.index >= p.size) {
    throw new Error("impossible proof shape");
  }
  if (p.siblings.length !== depth(p.size)) throw new Error(`a tree of ${p.size} leaves needs ${depth(p.size)} siblings`);
  let i = p.index;
  p.siblings.forEach((s, level) => {
    const sib = unhex(s);
    if (sib.length !== 32) throw new Error("a sibling is not 32 bytes");
    h = i & 1 ? sha256(concat(new Uint8Array([1]), sib, h)) : sha256(concat(new Uint8Array([1]), h, sib));
    steps.push(`level ${level + 1}: ${hex(h)}`);
    i = Math.floor(i / 2);
  });
  const root = sha256(concat(new Uint8Array([2]), u64(p.size), h));
  steps.push(`root = H(02 ‖ u64 ${p.size} ‖ top) = ${hex(root)}`);
  return { root: hex(root), steps };
}

async function getJson(url) {
  const resp = await fetch(url, { headers: { accept: "application/json" } });
  if (!resp.ok) throw new Error(`${url} answered ${resp.status}`);
  return resp.json();
}

async function checkProof(button) {
  const address = button.dataset.address;
  const out = document.getElementById("proof-result");
  const list = document.getElementById("proof-steps");
  out.dataset.state = "running";
  out.textContent = "Checking…";
  list.replaceChildren();
  try {
    const doc = (await getJson(`/v1/accounts/${encodeURIComponent(address)}?proof=true`)).proof;
    const header = (await getJson(`/v1/blocks/${Number(doc.height)}`)).header;
    const { root, steps } = accountRoot(address, doc);
    for (const s of steps) {
      const li = document.createElement("li");
      li.textContent = s;
      list.append(li);
    }
    const ok = root === header.state_root;
    out.dataset.state = ok ? "ok" : "fail";
    out.textContent = ok
      ? `Verified: the account (balance ${doc.account.balance}, stake ${doc.account.stake}) hashes up to the state root of block ${header.height}, ${header.state_root}.`
      : `FAILED: the proof hashes to ${root}, but block ${header.height}'s state root is ${header.state_root}.`;
  } catch (err) {
    out.dataset.state = "fail";
    out.textContent = "FAILED: " + err.message;
  }
}

const button = document.getElementById("proof-check");
if (button) {
  button.addEventListener("click", () => checkProof(button));
  checkProof(button);
}
