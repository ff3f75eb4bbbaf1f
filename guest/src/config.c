/*
 * Parsing and validating host requests. Everything is checked before anything is changed: unknown or repeated
 * fields, missing ones, and every value against the same rules the host applies (src/identity/validate.ts).
 * The host validated them already; checking again here keeps a confused or hostile peer from getting a hostname
 * like "a;reboot" or a 1970 clock into the guest.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

static int refuse(struct refusal *why, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(struct refusal *why, const char *code, const char *fmt, ...)
{
	va_list ap;
	why->code = code;
	va_start(ap, fmt);
	vsnprintf(why->message, sizeof(why->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* Walks the fields once: unknown and repeated tags are refused; `seen` gets one bit per tag (tags < 64). */
static int walk(const uint8_t *p, size_t n, const char *what, uint64_t allowed, uint64_t *seen, struct field *fields, int max, int *count,
		struct refusal *why)
{
	struct reader r = { p, n };
	struct field f;
	int rc;
	*seen = 0;
	*count = 0;
	while ((rc = r_next(&r, &f)) == 1) {
		if (f.tag >= 64 || !(allowed & (1ull << f.tag)))
			return refuse(why, "malformed", "%s has an unknown field (tag %u)", what, f.tag);
		if (*seen & (1ull << f.tag))
			return refuse(why, "malformed", "%s repeats field tag %u", what, f.tag);
		if (*count >= max)
			return refuse(why, "malformed", "%s has too many fields", what);
		*seen |= 1ull << f.tag;
		fields[(*count)++] = f;
	}
	if (rc < 0)
		return refuse(why, "malformed", "%s: a field runs past the end of the payload", what);
	return 0;
}

#define BIT(t) (1ull << (t))

static int valid_label(const char *s, size_t n)
{
	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

static int valid_hostname(const char *s)
{
	size_t len = strlen(s);
	if (len < 1 || len > HOSTNAME_MAX)
		return 0;
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!valid_label(p, n))
			return 0;
		if (!dot)
			return 1;
		p = dot + 1;
	}
}

static int valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static int valid_template_id(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= TEMPLATE_ID_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-") == n;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return 0;
	for (int i = 0; i < 6; i++) {
		unsigned v = 0;
		for (int j = 0; j < 2; j++) {
			char c = s[i * 3 + j];
			if (c >= '0' && c <= '9')
				v = v * 16 + (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v * 16 + (unsigned)(c - 'a' + 10);
			else
				return 0; /* lower-case only: the guest reports it lower-case and the host compares text */
		}
		if (i < 5 && s[i * 3 + 2] != ':')
			return 0;
		mac[i] = (uint8_t)v;
	}
	/* locally administered unicast: what the host allocates; never a vendor's or a multicast address */
	return (mac[0] & 0x02) && !(mac[0] & 0x01);
}

static int valid_machine_id(const char *s)
{
	if (strlen(s) != 32 || strspn(s, "0123456789abcdef") != 32)
		return 0;
	return strspn(s, "0") != 32;
}

static uint32_t ip4(const uint8_t b[4])
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int check_ipv4(struct config_req *c, struct refusal *why)
{
	if (inet_pton(AF_INET, c->ipv4_text, c->ipv4) != 1)
		return refuse(why, "malformed", "ipv4 address is not a dotted quad");
	if (inet_pton(AF_INET, c->gateway_text, c->gateway) != 1)
		return refuse(why, "malformed", "ipv4 gateway is not a dotted quad");
	if (c->prefix < 1 || c->prefix > 30)
		return refuse(why, "malformed", "ipv4 prefix %d is not 1-30", c->prefix);
	uint32_t mask = 0xffffffffu << (32 - c->prefix), a = ip4(c->ipv4), g = ip4(c->gateway);
	if (c->ipv4[0] == 0 || c->ipv4[0] == 127 || c->ipv4[0] >= 224)
		return refuse(why, "malformed", "ipv4 address is not a usable unicast address");
	if ((a & ~mask) == 0 || (a & ~mask) == ~mask)
		return refuse(why, "malformed", "ipv4 address is the network or broadcast address of its /%d", c->prefix);
	if ((g & mask) != (a & mask) || g == a)
		return refuse(why, "malformed", "ipv4 gateway is not another address inside the address's /%d", c->prefix);
	return 0;
}

int parse_hello_req(const uint8_t *p, size_t n, struct refusal *why)
{
	struct field fs[4];
	uint64_t seen;
	int count;
	char sw[128];
	if (walk(p, n, "HELLO", BIT(T_HOST_SOFTWARE), &seen, fs, 4, &count, why) < 0)
		return -1;
	for (int i = 0; i < count; i++)
		if (f_str(&fs[i], sw, sizeof(sw)) < 0)
			return refuse(why, "malformed", "HELLO host software is not a string of at most 127 bytes");
	return 0;
}

int parse_prepare(const uint8_t *p, size_t n, struct prepare_req *out, struct refusal *why)
{
	struct field fs[8];
	uint64_t seen;
	int count;
	uint8_t fork = 1;
	memset(out, 0, sizeof(*out));
	strcpy(out->ifname, "eth0");
	if (walk(p, n, "PREPARE", BIT(T_TEMPLATE_ID) | BIT(T_INTERFACE) | BIT(T_FORK), &seen, fs, 8, &count, why) < 0)
		return -1;
	if (!(seen & BIT(T_TEMPLATE_ID)))
		return refuse(why, "malformed", "PREPARE lacks the template id");
	for (int i = 0; i < count; i++) {
		const struct field *f = &fs[i];
		int bad = 0;
		switch (f->tag) {
		case T_TEMPLATE_ID: bad = f_str(f, out->template_id, sizeof(out->template_id)) < 0 || !valid_template_id(out->template_id); break;
		case T_INTERFACE: bad = f_str(f, out->ifname, sizeof(out->ifname)) < 0 || !valid_ifname(out->ifname); break;
		case T_FORK: bad = f_u8(f, &fork) < 0 || fork > 1; break;
		}
		if (bad)
			return refuse(why, "malformed", "PREPARE field tag %u has an invalid value", f->tag);
	}
	out->fork = fork;
	return 0;
}

int parse_config(const uint8_t *p, size_t n, struct config_req *c, struct refusal *why)
{
	const uint64_t required = BIT(T_TEMPLATE_ID) | BIT(T_NONCE) | BIT(T_HOSTNAME) | BIT(T_MAC) | BIT(T_MACHINE_ID) | BIT(T_ENTROPY) | BIT(T_SEED) | BIT(T_CLOCK_NS);
	const uint64_t v4 = BIT(T_IPV4_ADDRESS) | BIT(T_IPV4_PREFIX) | BIT(T_IPV4_GATEWAY);
	struct field fs[24];
	uint64_t seen;
	int count;
	uint8_t prefix = 0;
	memset(c, 0, sizeof(*c));
	strcpy(c->ifname, "eth0");
	if (walk(p, n, "CONFIG", required | v4 | BIT(T_INTERFACE), &seen, fs, 24, &count, why) < 0)
		return -1;
	if ((seen & required) != required)
		return refuse(why, "malformed", "CONFIG lacks required fields (have 0x%llx, need 0x%llx)", (unsigned long long)(seen & required),
			      (unsigned long long)required);
	if ((seen & v4) != 0 && (seen & v4) != v4)
		return refuse(why, "malformed", "CONFIG has part of an ipv4 setting: address, prefix and gateway go together");
	for (int i = 0; i < count; i++) {
		const struct field *f = &fs[i];
		const char *bad = NULL;
		switch (f->tag) {
		case T_TEMPLATE_ID:
			if (f_str(f, c->template_id, sizeof(c->template_id)) < 0 || !valid_template_id(c->template_id))
				bad = "template id";
			break;
		case T_NONCE:
			if (f->len != NONCE_BYTES)
				bad = "nonce (16 bytes)";
			else
				memcpy(c->nonce, f->val, NONCE_BYTES);
			break;
		case T_HOSTNAME:
			if (f_str(f, c->hostname, sizeof(c->hostname)) < 0 || !valid_hostname(c->hostname))
				bad = "hostname (RFC 1123 labels, lower-case, at most 64 characters)";
			break;
		case T_MAC:
			if (f_str(f, c->mac_text, sizeof(c->mac_text)) < 0 || !parse_mac(c->mac_text, c->mac))
				bad = "mac (lower-case, locally administered unicast)";
			break;
		case T_MACHINE_ID:
			if (f_str(f, c->machine_id, sizeof(c->machine_id)) < 0 || !valid_machine_id(c->machine_id))
				bad = "machine id (32 lower-case hex digits, not all zero)";
			break;
		case T_INTERFACE:
			if (f_str(f, c->ifname, sizeof(c->ifname)) < 0 || !valid_ifname(c->ifname))
				bad = "interface";
			break;
		case T_IPV4_ADDRESS:
			if (f_str(f, c->ipv4_text, sizeof(c->ipv4_text)) < 0)
				bad = "ipv4 address";
			break;
		case T_IPV4_GATEWAY:
			if (f_str(f, c->gateway_text, sizeof(c->gateway_text)) < 0)
				bad = "ipv4 gateway";
			break;
		case T_IPV4_PREFIX:
			if (f_u8(f, &prefix) < 0)
				bad = "ipv4 prefix";
			break;
		case T_ENTROPY:
			if (f->len < ENTROPY_MIN || f->len > ENTROPY_MAX)
				bad = "entropy (32-512 bytes)";
			else
				memcpy(c->entropy, f->val, c->entropy_len = f->len);
			break;
		case T_SEED:
			if (f->len < SEED_MIN || f->len > SEED_MAX)
				bad = "random seed (32-4096 bytes)";
			else
				memcpy(c->seed, f->val, c->seed_len = f->len);
			break;
		case T_CLOCK_NS:
			/* 2020-01-01 .. 2200-01-01: a zero or wrapped clock would break certificates, logs and make */
			if (f_u64(f, &c->host_clock_ns) < 0 || c->host_clock_ns < 1577836800ull * 1000000000ull ||
			    c->host_clock_ns > 7258118400ull * 1000000000ull)
				bad = "host clock (ns since the epoch, 2020-2200)";
			break;
		}
		if (bad)
			return refuse(why, "malformed", "CONFIG has an invalid %s", bad);
	}
	c->prefix = prefix;
	c->has_ipv4 = (seen & v4) == v4;
	if (c->has_ipv4 && check_ipv4(c, why) < 0)
		return -1;
	return 0;
}
