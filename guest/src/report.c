/* Step groups and facts, written straight into the outgoing frame. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void step_begin(struct step *s, struct wbuf *w, const char *name)
{
	s->w = w;
	s->name = name;
	s->failed = 0;
	s->detail[0] = 0;
	s->t0 = mono_us();
	s->at = w_group_begin(w, T_STEP);
	w_str(w, T_STEP_NAME, name);
}

void fact(struct step *s, const char *key, const char *fmt, ...)
{
	char value[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	size_t at = w_group_begin(s->w, T_FACT);
	w_str(s->w, T_FACT_KEY, key);
	w_str(s->w, T_FACT_VALUE, value);
	w_group_end(s->w, at);
}

static void set_detail(struct step *s, const char *fmt, va_list ap)
{
	if (!s->failed)
		vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
}

void step_fail(struct step *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(s, fmt, ap);
	va_end(ap);
	s->failed = 1;
}

void step_note(struct step *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_detail(s, fmt, ap);
	va_end(ap);
}

int step_end(struct step *s)
{
	uint64_t us = mono_us() - s->t0;
	w_u8(s->w, T_STEP_OK, !s->failed);
	w_u32(s->w, T_STEP_US, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
	if (s->detail[0])
		w_str(s->w, T_STEP_DETAIL, s->detail);
	w_group_end(s->w, s->at);
	/* stderr goes to the journal: step outcomes only, never values that could be secret */
	fprintf(stderr, "step %s %s in %llu us%s%s\n", s->name, s->failed ? "FAILED" : "ok", (unsigned long long)us,
		s->detail[0] ? ": " : "", s->detail);
	return !s->failed;
}
