/*
 * OpenSSH ed25519 host keys, generated in the guest. The 32-byte private seed comes from getrandom() AFTER the
 * host entropy was credited and the CRNG reseeded (the rng step). OpenSSL only derives the public key from the
 * seed (EVP_PKEY_new_raw_private_key): its own DRBG would have been seeded in the template and cloned into every
 * child, so it is never used. Format: PROTOCOL.key of OpenSSH ("openssh-key-v1", cipher none).
 */
#include "sshkey.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "files.h"

struct buf {
	uint8_t d[1024];
	size_t n;
	int overflow;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->overflow || b->n + n > sizeof(b->d)) {
		b->overflow = 1;
		return;
	}
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put(b, x, 4);
}

/* An SSH "string": uint32 length, then the bytes. */
static void put_str(struct buf *b, const void *p, size_t n)
{
	put_u32(b, (uint32_t)n);
	put(b, p, n);
}

static int derive_public(const uint8_t seed[32], uint8_t pub[32])
{
	size_t len = 32;
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (!k)
		return -1;
	int rc = EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == 32 ? 0 : -1;
	EVP_PKEY_free(k);
	return rc;
}

void sshkey_prewarm(void)
{
	uint8_t seed[32] = { 0 }, pub[32];
	derive_public(seed, pub);
}

static void public_blob(struct buf *b, const uint8_t pub[32])
{
	put_str(b, "ssh-ed25519", 11);
	put_str(b, pub, 32);
}

int sshkey_write_ed25519(const char *priv_path, const char *pub_path, const uint8_t seed[32], uint32_t checkint, const char *comment,
			 char *publine, size_t cap, char *err, size_t errcap)
{
	uint8_t pub[32];
	static struct buf key, blob, priv;
	static char b64[2048], pem[2200];
	int rc = -1;
	if (derive_public(seed, pub) < 0) {
		snprintf(err, errcap, "OpenSSL could not derive the ed25519 public key");
		return -1;
	}
	memset(&blob, 0, sizeof(blob));
	public_blob(&blob, pub);

	memset(&priv, 0, sizeof(priv));
	put_u32(&priv, checkint); /* twice: a decryptor's check that the passphrase was right */
	put_u32(&priv, checkint);
	public_blob(&priv, pub);
	put_u32(&priv, 64);
	put(&priv, seed, 32); /* OpenSSH's private half is seed || public key */
	put(&priv, pub, 32);
	put_str(&priv, comment, strlen(comment));
	for (uint8_t pad = 1; priv.n % 8; pad++)
		put(&priv, &pad, 1);

	memset(&key, 0, sizeof(key));
	put(&key, "openssh-key-v1", 15); /* with its NUL */
	put_str(&key, "none", 4);
	put_str(&key, "none", 4);
	put_str(&key, "", 0);
	put_u32(&key, 1);
	put_str(&key, blob.d, blob.n);
	put_str(&key, priv.d, priv.n);
	if (key.overflow || priv.overflow || blob.overflow) {
		snprintf(err, errcap, "key comment too long");
		goto out;
	}

	int n = EVP_EncodeBlock((unsigned char *)b64, key.d, (int)key.n);
	size_t o = (size_t)snprintf(pem, sizeof(pem), "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	for (int i = 0; i < n; i += 70)
		o += (size_t)snprintf(pem + o, sizeof(pem) - o, "%.*s\n", n - i < 70 ? n - i : 70, b64 + i);
	o += (size_t)snprintf(pem + o, sizeof(pem) - o, "-----END OPENSSH PRIVATE KEY-----\n");
	if (write_atomic(priv_path, pem, o, 0600, FORCE_MODE) < 0) {
		snprintf(err, errcap, "write %s: %s", priv_path, strerror(errno));
		goto out;
	}

	EVP_EncodeBlock((unsigned char *)b64, blob.d, (int)blob.n);
	int pn = snprintf(publine, cap, "ssh-ed25519 %s %s", b64, comment);
	if (pn < 0 || (size_t)pn + 1 >= cap) {
		snprintf(err, errcap, "public key line too long");
		goto out;
	}
	publine[pn] = '\n';
	if (write_atomic(pub_path, publine, (size_t)pn + 1, 0644, FORCE_MODE) < 0) {
		snprintf(err, errcap, "write %s: %s", pub_path, strerror(errno));
		publine[pn] = 0;
		goto out;
	}
	publine[pn] = 0;
	rc = 0;
out:
	/* the private half must not linger in static buffers */
	explicit_bzero(&key, sizeof(key));
	explicit_bzero(&priv, sizeof(priv));
	explicit_bzero(b64, sizeof(b64));
	explicit_bzero(pem, sizeof(pem));
	return rc;
}
