/*
 * Step results as the host reads them: each step is one T_STEP group with its name, ok, duration and detail,
 * plus the facts it observed AFTER changing things (the same keys the shell identity steps print, so the host
 * verifies both paths with one set of checks).
 */
#ifndef VFG_REPORT_H
#define VFG_REPORT_H

#include <stdint.h>

#include "proto.h"

#define DETAIL_MAX 480

struct step {
	struct wbuf *w;
	size_t at;
	const char *name;
	uint64_t t0;
	int failed;
	char detail[DETAIL_MAX];
};

uint64_t mono_us(void);
uint64_t real_ns(void);

void step_begin(struct step *s, struct wbuf *w, const char *name);
void fact(struct step *s, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The first failure wins: later steps of the same function are skipped by their callers. */
void step_fail(struct step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A detail for a step that did not fail (ignored once it failed). */
void step_note(struct step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Closes the group; returns 1 when the step is ok. */
int step_end(struct step *s);

#endif
