/*
 * vmfork-guest wire protocol (guest/PROTOCOL.md): a 12-byte header, then a payload of TLV fields.
 * The header layout never changes between protocol versions, so a peer can always skip a frame it
 * does not understand; only the payload's meaning is versioned.
 */
#ifndef VFG_PROTO_H
#define VFG_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define VFG_PROTOCOL_VERSION 1
#define VFG_AGENT_VERSION "0.2.0"
#define VFG_HEADER_BYTES 12
/* Hard limit on a payload, both directions: the agent's buffers are static, never sized by a peer. */
#define VFG_MAX_PAYLOAD 65536

enum vfg_type {
	/* agent -> host */
	VFG_HELLO = 0x01,
	VFG_PREPARED = 0x02,
	VFG_FORK_ME = 0x03,
	VFG_REPORT = 0x04,
	VFG_KICKED = 0x05,
	VFG_SESSIONS = 0x06,
	VFG_ERROR = 0x7f,
	/* host -> agent */
	VFG_HELLO_REQ = 0x81,
	VFG_PREPARE = 0x82,
	VFG_CONFIG = 0x84,
	VFG_WATCH = 0x86,
};

enum vfg_tag {
	T_PROTOCOL = 1,       /* u32 */
	T_AGENT_VERSION = 2,  /* string */
	T_CAPABILITY = 3,     /* string, repeated */
	T_STATE = 4,          /* string */
	T_TEMPLATE_ID = 5,    /* string */
	T_NONCE = 6,          /* bytes (16) */
	T_BOOT_ID = 7,        /* string */
	T_CLOCK_NS = 8,       /* u64 */
	T_PID = 9,            /* u32 */
	T_MAX_PAYLOAD = 10,   /* u32 */
	T_HOST_SOFTWARE = 11, /* string */
	T_ERROR_CODE = 12,    /* string */
	T_MESSAGE = 13,       /* string */
	T_TOTAL_US = 14,      /* u32 */
	T_INTERFACE = 20,     /* string */
	T_FORK = 21,          /* u8 */
	T_HOSTNAME = 22,      /* string */
	T_MAC = 23,           /* string */
	T_IPV4_ADDRESS = 24,  /* string */
	T_IPV4_PREFIX = 25,   /* u8 */
	T_IPV4_GATEWAY = 26,  /* string */
	T_MACHINE_ID = 27,    /* string */
	T_ENTROPY = 28,       /* bytes */
	T_SEED = 29,          /* bytes */
	T_STEP = 40,          /* group */
	T_STEP_NAME = 41,     /* string */
	T_STEP_OK = 42,       /* u8 */
	T_STEP_US = 43,       /* u32 */
	T_STEP_DETAIL = 44,   /* string */
	T_FACT = 45,          /* group */
	T_FACT_KEY = 46,      /* string */
	T_FACT_VALUE = 47,    /* string */
	T_SESSION = 50,       /* group, repeated */
	T_SESSION_ID = 51,    /* string */
	T_USER = 52,          /* string */
	T_UID = 53,           /* u32 */
	T_CLASS = 54,         /* string */
	T_SESSION_TYPE = 55,  /* string */
	T_SESSION_STATE = 56, /* string */
	T_REMOTE = 57,        /* u8 */
	T_ACTIVE = 58,        /* u8 */
	T_SERVICE = 59,       /* string */
	T_SESSION_COUNT = 60, /* u32 */
};

/* One frame being built: header + payload in one static buffer, so a frame is one write(). */
struct wbuf {
	uint8_t buf[VFG_HEADER_BYTES + VFG_MAX_PAYLOAD];
	size_t len;
	int overflow;
};

void w_begin(struct wbuf *w, uint8_t type, uint32_t id);
void w_bytes(struct wbuf *w, uint16_t tag, const void *data, size_t n);
void w_str(struct wbuf *w, uint16_t tag, const char *s);
void w_u8(struct wbuf *w, uint16_t tag, uint8_t v);
void w_u32(struct wbuf *w, uint16_t tag, uint32_t v);
void w_u64(struct wbuf *w, uint16_t tag, uint64_t v);
/* Groups nest fields; w_group_end fills in the length. */
size_t w_group_begin(struct wbuf *w, uint16_t tag);
void w_group_end(struct wbuf *w, size_t at);
/* Sets the payload length; -1 when the payload outgrew VFG_MAX_PAYLOAD (nothing may be sent then). */
int w_finish(struct wbuf *w);

struct field {
	uint16_t tag;
	uint16_t len;
	const uint8_t *val;
};

struct reader {
	const uint8_t *p;
	size_t left;
};

/* 1: a field was read; 0: end of fields; -1: a field runs past the end (malformed). */
int r_next(struct reader *r, struct field *f);
/* Typed views of a field; -1 when the length is wrong for the type or a string holds a NUL. */
int f_u8(const struct field *f, uint8_t *out);
int f_u64(const struct field *f, uint64_t *out);
int f_str(const struct field *f, char *out, size_t cap);

uint32_t be32(const uint8_t *p);
void put_be32(uint8_t *p, uint32_t v);

#endif
