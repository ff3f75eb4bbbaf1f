/* ed25519 host keys in OpenSSH's formats, made from a seed the caller draws (never from OpenSSL's own RNG). */
#ifndef VFG_SSHKEY_H
#define VFG_SSHKEY_H

#include <stddef.h>
#include <stdint.h>

/* Loads OpenSSL's provider and SHA-512 once with a fixed seed: the template pays, its children do not. */
void sshkey_prewarm(void);
/* Writes the private key (0600) and the .pub line (0644); the public line is also copied into publine. */
int sshkey_write_ed25519(const char *priv_path, const char *pub_path, const uint8_t seed[32], uint32_t checkint, const char *comment,
			 char *publine, size_t cap, char *err, size_t errcap);

#endif
