// SPDX-License-Identifier: GPL-2.0
/*
 * lib/web over TLS: a self-signed certificate made here with OpenSSL, the
 * server given it as PEM text, a TLS client (OpenSSL) that checks HSTS and
 * the Secure cookie attribute, and that plain HTTP on the TLS port gets no page.
 */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "gm_harness.h"
#include "web_client.h"

static struct web_resp *handler(void *app, const struct web_req *r)
{
	struct web_resp *w;

	(void)app;
	w = web_resp_text(200, r->tls ? "tls" : "plain");
	if (web_resp_cookie(w, r, "gm", "abc", 60))
		return web_resp_error(500, "cookie");
	return w;
}

static char *bio_text(BIO *b)
{
	char *p, *out;
	long n = BIO_get_mem_data(b, &p);

	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return out;
}

/* A self-signed P-256 certificate for localhost, as PEM texts. */
static int make_cert(char **cert, char **key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
	int rc = -1;

	if (!pk || !x || !bc || !bk)
		goto out;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, pk, EVP_sha256()) || !PEM_write_bio_X509(bc, x) ||
	    !PEM_write_bio_PrivateKey(bk, pk, NULL, NULL, 0, NULL, NULL))
		goto out;
	*cert = bio_text(bc);
	*key = bio_text(bk);
	rc = 0;
out:
	BIO_free(bc);
	BIO_free(bk);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

/* GET / over TLS up to version max (0: any); the response's raw text (malloc'd) or NULL. */
static char *tls_get_max(unsigned int port, int max)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
	char *out = NULL;
	size_t len = 0;
	int fd = wc_connect(port);

	if (!ctx || fd < 0)
		goto done;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);	/* self-signed, made above */
	if (max) {	/* an old client: OpenSSL itself refuses TLS < 1.2 above level 0 */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(ctx, 0);
		SSL_CTX_set_max_proto_version(ctx, max);
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, sizeof(req) - 1) <= 0)
		goto done;
	out = calloc(1, 65536);
	for (;;) {
		int n = SSL_read(ssl, out + len, (int)(65535 - len));

		if (n <= 0)
			break;
		len += (size_t)n;
	}
done:
	if (ssl)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return out;
}

static char *tls_get(unsigned int port)
{
	return tls_get_max(port, 0);
}

TEST(tls_hsts_and_secure_cookie)
{
	struct web_server_config cfg = { .listen = "127.0.0.1:0", .timeout_s = 5 };
	struct web_server *s;
	char *cert = NULL, *key = NULL, *resp, err[256] = "";
	struct wc_resp plain;

	ASSERT_EQ(0, make_cert(&cert, &key));
	cfg.tls_cert_pem = cert;
	cfg.tls_key_pem = key;
	s = web_server_start(&cfg, handler, NULL, err, sizeof(err));
	ASSERT_NE(NULL, s) TH_LOG("%s", err);
	/* The server keeps its own copies of the PEM texts. */
	memset(cert, 'x', strlen(cert));
	free(cert);
	free(key);

	resp = tls_get(web_server_port(s));
	ASSERT_NE(NULL, resp);
	EXPECT_EQ(0, strncmp(resp, "HTTP/1.1 200", 12)) TH_LOG("%s", resp);
	EXPECT_NE(NULL, strstr(resp, "\r\nStrict-Transport-Security: max-age="));
	EXPECT_NE(NULL, strstr(resp, "\r\nContent-Security-Policy: default-src 'self'"));
	EXPECT_NE(NULL, strstr(resp, "\r\nSet-Cookie: gm=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure\r\n"));
	EXPECT_NE(NULL, strstr(resp, "\r\n\r\ntls"));
	free(resp);

	/* Plain HTTP to the TLS port: no page. */
	if (!wc_get(web_server_port(s), "/", NULL, &plain)) {
		EXPECT_NE(200, plain.status);
		wc_free(&plain);
	}
	web_server_stop(s);
}

/* TLS 1.0 and 1.1 (deprecated, RFC 8996) are refused; 1.2 and 1.3 work. */
TEST(tls_old_versions_refused)
{
	struct web_server_config cfg = { .listen = "127.0.0.1:0", .timeout_s = 5 };
	static const int old[] = { TLS1_VERSION, TLS1_1_VERSION }, ok[] = { TLS1_2_VERSION, TLS1_3_VERSION };
	struct web_server *s;
	char *cert = NULL, *key = NULL, *resp, err[256] = "";

	ASSERT_EQ(0, make_cert(&cert, &key));
	cfg.tls_cert_pem = cert;
	cfg.tls_key_pem = key;
	s = web_server_start(&cfg, handler, NULL, err, sizeof(err));
	free(cert);
	free(key);
	ASSERT_NE(NULL, s) TH_LOG("%s", err);
	for (size_t i = 0; i < 2; i++) {
		resp = tls_get_max(web_server_port(s), old[i]);
		EXPECT_EQ(NULL, resp) TH_LOG("version %#x: %s", old[i], resp);
		free(resp);
		resp = tls_get_max(web_server_port(s), ok[i]);
		ASSERT_NE(NULL, resp) TH_LOG("version %#x", ok[i]);
		EXPECT_EQ(0, strncmp(resp, "HTTP/1.1 200", 12));
		free(resp);
	}
	web_server_stop(s);
}

TEST(tls_bad_key_refused)
{
	struct web_server_config cfg = { .listen = "127.0.0.1:0",
					 .tls_cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
					 .tls_key_pem = "not a key" };
	char err[256] = "";

	EXPECT_EQ(NULL, web_server_start(&cfg, handler, NULL, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "TLS")) TH_LOG("%s", err);
}

TEST_HARNESS_MAIN
