// SPDX-License-Identifier: GPL-2.0
// gridmeter portal: an operator signs commands in their own browser
// (Documentation/commands.md "Approving in the portal").
//
// The page (portal_commands.c) gives, inside <form class="gm-sign">:
//   data-signer       the operator signed in (the key file must be theirs)
//   data-signer-pk    their registered public key (64 hex digits)
//   li[data-msg]      per command, the exact bytes to sign, in hex:
//                     "gridmeter signed command v1" followed by the body
//                     (gmc_signed_bytes), with a hidden input.gm-sig to fill
//   input.gm-sign-key an <input type=file> with no name: the key file is
//                     read here and never sent
//   .gm-sign-status   where this script says what it does, in words
// The key file is `mainctl op-keygen`'s: one line "NAME HEX", 128 hex
// digits = the 32-byte Ed25519 seed then the 32-byte public key. The seed
// is imported into WebCrypto (PKCS#8, not extractable), each message is
// signed and verified against the registered key, the signatures go into
// the hidden fields and the form is sent. Nothing else leaves the page.
'use strict';

(function () {
  // PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410) up to the 32-byte seed
  const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
    0x70, 0x04, 0x22, 0x04, 0x20];

  function hexToBytes(hex) {
    if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-fA-F]/.test(hex)) return null;
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  function bytesToHex(b) {
    let s = '';
    for (const x of b) s += x.toString(16).padStart(2, '0');
    return s;
  }

  // "NAME HEX" (comments and blank lines allowed) -> { name, seed, pk } or an error in words
  function parseKeyFile(text) {
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && l[0] !== '#');
    if (lines.length !== 1) return { error: 'the key file must hold one line "NAME KEY"' };
    const m = /^([A-Za-z0-9._-]{1,31})\s+([0-9a-fA-F]{128})$/.exec(lines[0]);
    if (!m) return { error: 'this is not an operator key file (mainctl op-keygen makes one: ' +
      'a name and 128 hex digits)' };
    const key = hexToBytes(m[2]);
    return { name: m[1], seed: key.slice(0, 32), pk: key.slice(32) };
  }

  async function importKeys(seed, pk) {
    const pkcs8 = new Uint8Array(PKCS8_ED25519.length + 32);
    pkcs8.set(PKCS8_ED25519);
    pkcs8.set(seed, PKCS8_ED25519.length);
    try {
      const priv = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false,
        ['sign']);
      const pub = await crypto.subtle.importKey('raw', pk, { name: 'Ed25519' }, true,
        ['verify']);
      return { priv, pub };
    } finally {
      pkcs8.fill(0);
    }
  }

  function say(form, text, bad) {
    const st = form.querySelector('.gm-sign-status');
    if (st) {
      st.textContent = text;
      st.classList.toggle('gm-alert', !!bad);
      st.classList.toggle('gm-bad', !!bad);
    }
    form.dataset.signState = bad ? 'error' : 'working';
  }

  async function sign(form) {
    const input = form.querySelector('input.gm-sign-key');
    const items = Array.from(form.querySelectorAll('[data-msg]'));
    if (!window.crypto || !crypto.subtle) {
      throw new Error('this browser cannot sign here: the portal must be opened over HTTPS ' +
        '(WebCrypto is only given to secure pages)');
    }
    if (!input || !input.files || !input.files.length) throw new Error('choose your key file first');
    if (!items.length) throw new Error('there is nothing to sign on this page');
    const file = input.files[0];
    if (file.size > 4096) throw new Error('this file is too large to be an operator key file');
    const parsed = parseKeyFile(await file.text());
    if (parsed.error) throw new Error(parsed.error);
    try {
      const registered = (form.dataset.signerPk || '').toLowerCase();
      if (form.dataset.signer && parsed.name !== form.dataset.signer) {
        throw new Error(`this key file is ${parsed.name}'s; you are signed in as ` +
          `${form.dataset.signer}`);
      }
      if (registered && bytesToHex(parsed.pk) !== registered) {
        throw new Error('the key in this file is not the one registered for ' +
          `${form.dataset.signer || parsed.name} (an old or another key file?)`);
      }
      const { priv, pub } = await importKeys(parsed.seed, parsed.pk);
      let n = 0;
      for (const li of items) {
        const msg = hexToBytes(li.dataset.msg);
        const out = li.querySelector('input.gm-sig');
        if (!msg || !out) throw new Error('the page is damaged: reload it');
        const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, priv, msg));
        // the public key in the file must be the seed's own: check before sending
        if (!(await crypto.subtle.verify({ name: 'Ed25519' }, pub, sig, msg))) {
          throw new Error('the key file is damaged: its public key does not belong to its ' +
            'secret key');
        }
        out.value = bytesToHex(sig);
        n++;
        if (n % 25 === 0) say(form, `signed ${n} of ${items.length}…`);
      }
      return n;
    } finally {
      parsed.seed.fill(0);
      input.value = '';
    }
  }

  function setup(form) {
    form.addEventListener('submit', (ev) => {
      if (form.dataset.signState === 'signed') return;	// the signatures are in: send
      ev.preventDefault();
      const button = form.querySelector('button[type=submit], button:not([type])');
      if (button) button.disabled = true;
      say(form, 'signing with your key, in this browser…');
      sign(form).then((n) => {
        form.dataset.signState = 'signed';
        say(form, `signed ${n} command${n === 1 ? '' : 's'}; sending the signatures…`);
        form.submit();
      }, (err) => {
        for (const s of form.querySelectorAll('input.gm-sig')) s.value = '';
        say(form, `Not signed: ${err.message}`, true);
        if (button) button.disabled = false;
      });
    });
    form.dataset.signState = 'ready';
  }

  function start() {
    for (const form of document.querySelectorAll('form.gm-sign')) setup(form);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
