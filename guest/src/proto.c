/* Frame building and TLV reading for the vmfork-guest protocol (guest/PROTOCOL.md). */
#include "proto.h"

#include <string.h>

uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

void w_begin(struct wbuf *w, uint8_t type, uint32_t id)
{
	w->buf[0] = 'V';
	w->buf[1] = 'F';
	w->buf[2] = VFG_PROTOCOL_VERSION;
	w->buf[3] = type;
	put_be32(w->buf + 4, id);
	put_be32(w->buf + 8, 0);
	w->len = VFG_HEADER_BYTES;
	w->overflow = 0;
}

/* A field longer than a TLV length can say, or one that does not fit, marks the frame unsendable. */
static uint8_t *w_reserve(struct wbuf *w, uint16_t tag, size_t n)
{
	if (w->overflow || n > 0xffff || w->len + 4 + n > sizeof(w->buf)) {
		w->overflow = 1;
		return NULL;
	}
	uint8_t *p = w->buf + w->len;
	put_be16(p, tag);
	put_be16(p + 2, (uint16_t)n);
	w->len += 4 + n;
	return p + 4;
}

void w_bytes(struct wbuf *w, uint16_t tag, const void *data, size_t n)
{
	uint8_t *p = w_reserve(w, tag, n);
	if (p && n)
		memcpy(p, data, n);
}

void w_str(struct wbuf *w, uint16_t tag, const char *s)
{
	w_bytes(w, tag, s, strlen(s));
}

void w_u8(struct wbuf *w, uint16_t tag, uint8_t v)
{
	w_bytes(w, tag, &v, 1);
}

void w_u32(struct wbuf *w, uint16_t tag, uint32_t v)
{
	uint8_t b[4];
	put_be32(b, v);
	w_bytes(w, tag, b, 4);
}

void w_u64(struct wbuf *w, uint16_t tag, uint64_t v)
{
	uint8_t b[8];
	put_be32(b, (uint32_t)(v >> 32));
	put_be32(b + 4, (uint32_t)v);
	w_bytes(w, tag, b, 8);
}

size_t w_group_begin(struct wbuf *w, uint16_t tag)
{
	size_t at = w->len;
	w_reserve(w, tag, 0);
	return at;
}

void w_group_end(struct wbuf *w, size_t at)
{
	if (w->overflow)
		return;
	size_t n = w->len - at - 4;
	if (n > 0xffff) {
		w->overflow = 1;
		return;
	}
	put_be16(w->buf + at + 2, (uint16_t)n);
}

int w_finish(struct wbuf *w)
{
	if (w->overflow || w->len - VFG_HEADER_BYTES > VFG_MAX_PAYLOAD)
		return -1;
	put_be32(w->buf + 8, (uint32_t)(w->len - VFG_HEADER_BYTES));
	return 0;
}

int r_next(struct reader *r, struct field *f)
{
	if (r->left == 0)
		return 0;
	if (r->left < 4)
		return -1;
	f->tag = (uint16_t)(r->p[0] << 8 | r->p[1]);
	f->len = (uint16_t)(r->p[2] << 8 | r->p[3]);
	if (r->left - 4 < f->len)
		return -1;
	f->val = r->p + 4;
	r->p += 4 + f->len;
	r->left -= 4 + (size_t)f->len;
	return 1;
}

int f_u8(const struct field *f, uint8_t *out)
{
	if (f->len != 1)
		return -1;
	*out = f->val[0];
	return 0;
}

int f_u64(const struct field *f, uint64_t *out)
{
	if (f->len != 8)
		return -1;
	*out = (uint64_t)be32(f->val) << 32 | be32(f->val + 4);
	return 0;
}

int f_str(const struct field *f, char *out, size_t cap)
{
	if (f->len >= cap || memchr(f->val, 0, f->len))
		return -1;
	memcpy(out, f->val, f->len);
	out[f->len] = 0;
	return 0;
}
