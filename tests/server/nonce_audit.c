// SPDX-License-Identifier: GPL-2.0
/* An audit of captured gmproto v2 traffic for (key, nonce) repeats (nonce_audit.h). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "nonce_audit.h"

struct na_frame {
	struct gm_hdr h;
	uint16_t len;
	uint8_t payload[GM_MAX_PAYLOAD];
};

struct na_lt {
	uint16_t meter;
	struct gmp_lt lt;		/* rx: meter -> town, tx: town -> meter */
};

struct na_session {
	uint16_t meter;
	uint8_t sid;
	uint8_t m2t[GMP_KEY_LEN], t2m[GMP_KEY_LEN];
};

/* One use of a key with a nonce, and a digest of the envelope it sealed. */
struct na_use {
	uint8_t key[GMP_KEY_LEN];
	uint8_t nonce[GMP_NONCE_LEN];
	uint8_t digest[16];
};

void nonce_audit_init(struct nonce_audit *a)
{
	memset(a, 0, sizeof(*a));
}

void nonce_audit_free(struct nonce_audit *a)
{
	free(a->opened);
	free(a->f);
	if (a->lt)
		sodium_memzero(a->lt, a->cap_lt * sizeof(*a->lt));
	free(a->lt);
	if (a->ses)
		sodium_memzero(a->ses, a->cap_ses * sizeof(*a->ses));
	free(a->ses);
	memset(a, 0, sizeof(*a));
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	void *q;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 64;
	q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

int nonce_audit_key(struct nonce_audit *a, const struct gmp_keypair *town, uint16_t meter,
		    const uint8_t meter_pk[GMP_KEY_LEN])
{
	if (grow((void **)&a->lt, &a->cap_lt, a->n_lt, sizeof(*a->lt)))
		return -1;
	if (gmp_lt_town(&a->lt[a->n_lt].lt, town, meter_pk))
		return -1;
	a->lt[a->n_lt++].meter = meter;
	return 0;
}

int nonce_audit_frame(struct nonce_audit *a, const struct gm_hdr *h, const uint8_t *payload,
		      size_t len)
{
	struct na_frame *f;

	if (len > GM_MAX_PAYLOAD || grow((void **)&a->f, &a->cap_f, a->n_f, sizeof(*a->f)))
		return -1;
	f = &a->f[a->n_f++];
	f->h = *h;
	f->len = (uint16_t)len;
	memcpy(f->payload, payload, len);
	return 0;
}

int nonce_audit_stream(struct nonce_audit *a, const uint8_t *buf, size_t len)
{
	struct gm_rx rx;
	size_t off = 0;
	int n = 0;

	gm_rx_init(&rx);
	while (off < len) {
		enum gm_rx_status st;

		off += gm_rx_feed(&rx, buf + off, len - off, &st);
		if (st != GM_RX_FRAME)
			continue;
		if (nonce_audit_frame(a, &rx.hdr, rx.payload, rx.payload_len))
			return -1;
		n++;
	}
	return n;
}

static bool gmproto_frame(const struct na_frame *f, uint16_t *meter, bool *up)
{
	if (f->h.type != GM_TYPE_DATA && f->h.type != GM_TYPE_ACK)
		return false;
	if (f->h.dst == GM_ID_SERVER && f->h.src != GM_ID_SERVER) {
		*meter = f->h.src;
		*up = true;
		return true;
	}
	if (f->h.src == GM_ID_SERVER && f->h.dst != GM_ID_SERVER) {
		*meter = f->h.dst;
		*up = false;
		return true;
	}
	return false;
}

static int add_use(struct na_use **u, size_t *n, size_t *cap, const uint8_t *key,
		   const uint8_t *nonce, const struct na_frame *f)
{
	if (grow((void **)u, cap, *n, sizeof(**u)))
		return -1;
	memcpy((*u)[*n].key, key, GMP_KEY_LEN);
	memcpy((*u)[*n].nonce, nonce, GMP_NONCE_LEN);
	crypto_generichash((*u)[*n].digest, sizeof((*u)[*n].digest), f->payload, f->len,
			   NULL, 0);
	(*n)++;
	return 0;
}

static int use_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct na_use));
}

/* Pass 1: handshake envelopes, sessions from WELCOMEs. */
static int handshakes(struct nonce_audit *a, struct na_use **uses, size_t *n_uses,
		      size_t *cap_uses, bool *done)
{
	for (size_t i = 0; i < a->n_f; i++) {
		const struct na_frame *f = &a->f[i];
		struct gmp_addr ad = { f->h.type, f->h.flags, f->h.src, f->h.dst };
		uint8_t plain[GM_MAX_PAYLOAD];
		uint16_t meter;
		bool up;

		if (!gmproto_frame(f, &meter, &up) ||
		    gmp_envelope_kind(f->payload, f->len, NULL) != GMP_KIND_HANDSHAKE)
			continue;
		for (size_t k = 0; k < a->n_lt && !done[i]; k++) {
			const struct gmp_lt *lt = &a->lt[k].lt;
			struct gmp_lt dir;
			struct gmp_msg m;
			size_t off = 0;
			int n;

			if (a->lt[k].meter != meter)
				continue;
			/* the town's view: rx opens what the meter sent, tx what the town sent */
			memcpy(dir.rx, up ? lt->rx : lt->tx, GMP_KEY_LEN);
			n = gmp_hs_open(&dir, &ad, f->payload, f->len, plain, sizeof(plain));
			if (n < 0)
				continue;
			done[i] = true;
			a->handshakes++;
			if (add_use(uses, n_uses, cap_uses, dir.rx, f->payload + 1, f))
				return -1;
			if (a->on_plain)
				a->on_plain(a->ctx, i, &f->h, plain, (size_t)n);
			if (up || gmp_decode_next(plain, (size_t)n, &off, &m) != 1 ||
			    m.type != GMP_WELCOME)
				continue;
			if (grow((void **)&a->ses, &a->cap_ses, a->n_ses, sizeof(*a->ses)))
				return -1;
			{
				struct gmp_session s;
				struct na_session *ns = &a->ses[a->n_ses++];

				/* the town's session: rx = meter -> town, tx = town -> meter */
				gmp_session_derive(&s, lt, m.welcome.rm, m.welcome.rt,
						   (uint8_t)m.welcome.sid);
				ns->meter = meter;
				ns->sid = (uint8_t)m.welcome.sid;
				memcpy(ns->m2t, s.rx_key, GMP_KEY_LEN);
				memcpy(ns->t2m, s.tx_key, GMP_KEY_LEN);
				gmp_session_wipe(&s);
				a->welcomes++;
			}
		}
	}
	return 0;
}

int nonce_audit_run(struct nonce_audit *a)
{
	struct na_use *uses = NULL;
	size_t n_uses = 0, cap_uses = 0;
	bool *done = calloc(a->n_f ? a->n_f : 1, sizeof(*done));
	int rc = -1;

	free(a->opened);
	a->opened = done;

	a->frames = a->handshakes = a->sessions = a->welcomes = 0;
	a->unattributed = a->repeats = a->copies = 0;
	a->n_ses = 0;
	if (!done)
		return -1;
	if (handshakes(a, &uses, &n_uses, &cap_uses, done))
		goto out;
	/* pass 2: session envelopes, by trial with the sessions of (meter, sid) */
	for (size_t i = 0; i < a->n_f; i++) {
		const struct na_frame *f = &a->f[i];
		struct gmp_addr ad = { f->h.type, f->h.flags, f->h.src, f->h.dst };
		uint8_t plain[GM_MAX_PAYLOAD], nonce[GMP_NONCE_LEN], sid = 0;
		uint16_t meter;
		bool up;

		if (!gmproto_frame(f, &meter, &up))
			continue;
		a->frames++;
		if (done[i])
			continue;
		if (gmp_envelope_kind(f->payload, f->len, &sid) != GMP_KIND_SESSION ||
		    gmp_envelope_nonce(f->payload, f->len, nonce) < 0) {
			a->unattributed++;
			continue;
		}
		for (size_t k = a->n_ses; k-- > 0 && !done[i];) {
			const struct na_session *ns = &a->ses[k];
			struct gmp_session s = { .sid = sid, .up = true };
			int n;

			if (ns->meter != meter || ns->sid != sid)
				continue;
			memcpy(s.rx_key, up ? ns->m2t : ns->t2m, GMP_KEY_LEN);
			n = gmp_open(&s, &ad, f->payload, f->len, plain, sizeof(plain), NULL);
			if (n < 0)
				continue;
			done[i] = true;
			a->sessions++;
			if (add_use(&uses, &n_uses, &cap_uses, s.rx_key, nonce, f))
				goto out;
			if (a->on_plain)
				a->on_plain(a->ctx, i, &f->h, plain, (size_t)n);
		}
		if (!done[i])
			a->unattributed++;
	}
	if (n_uses)
		qsort(uses, n_uses, sizeof(*uses), use_cmp);
	/*
	 * The same envelope twice is a copy (a replay, or one frame in two
	 * captures); two different envelopes under one (key, nonce) is the
	 * fault this audit looks for.
	 */
	for (size_t i = 1; i < n_uses; i++) {
		bool same_pair = !memcmp(&uses[i], &uses[i - 1], GMP_KEY_LEN + GMP_NONCE_LEN);

		if (same_pair && memcmp(uses[i].digest, uses[i - 1].digest, 16))
			a->repeats++;
		else if (same_pair)
			a->copies++;
	}
	rc = 0;
out:
	if (uses)
		sodium_memzero(uses, cap_uses * sizeof(*uses));
	free(uses);
	return rc;
}
