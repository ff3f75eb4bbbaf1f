/*
 * WATCH: the guest's login sessions as logind records them, one file per session in /run/systemd/sessions (the
 * files sd-login(3) reads). The answer is a SESSIONS frame with every class=user session, then one more each time
 * that list changes, until the host goes away. Changes come from inotify on the directory, woken by the channel's
 * own wait (port.c): no polling, no thread. Greeter, lock-screen and background sessions are not listed: they are
 * no user at the machine.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "agent.h"
#include "files.h"
#include "port.h"

#define SESSIONS_DIR "/run/systemd/sessions"
#define SESSIONS_PARENT "/run/systemd"
#define MAX_LISTED 128
#define FIELD_MAX 256

struct session {
	char id[65];
	char user[FIELD_MAX], cls[32], type[32], state[32], service[FIELD_MAX];
	unsigned uid;
	int remote, active;
};

static struct session found[MAX_LISTED];
static struct wbuf frame;
/* the payload of the last SESSIONS sent: an event that changes nothing the host sees sends nothing */
static uint8_t last[VFG_MAX_PAYLOAD];
static size_t last_len;
static uint32_t watch_id;
static int ino = -1, wd_dir = -1, wd_parent = -1;

int parse_watch(const uint8_t *p, size_t n, struct refusal *why)
{
	struct reader r = { p, n };
	struct field f;
	int rc = r_next(&r, &f);
	if (rc == 0)
		return 0;
	why->code = "malformed";
	if (rc < 0)
		snprintf(why->message, sizeof(why->message), "WATCH: a field runs past the end of the payload");
	else
		snprintf(why->message, sizeof(why->message), "WATCH has an unknown field (tag %u)", f.tag);
	return -1;
}

static int valid_id(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* KEY=value lines as logind writes them (session_save() in systemd's logind-session.c). */
static void value_of(const char *text, const char *key, char *out, size_t cap)
{
	size_t k = strlen(key);
	out[0] = 0;
	for (const char *line = text; *line;) {
		const char *end = line + strcspn(line, "\n");
		if (!strncmp(line, key, k) && line[k] == '=') {
			size_t n = (size_t)(end - line) - k - 1;
			if (n >= cap)
				n = cap - 1; /* logind's user names are at most 32 characters: a longer value is cut, never overflows */
			memcpy(out, line + k + 1, n);
			out[n] = 0;
			return;
		}
		line = *end ? end + 1 : end;
	}
}

/* 1: a class=user session read into s; 0: another class or not (or no longer) a session file. */
static int read_session(const char *id, struct session *s)
{
	static char text[8192];
	char path[4096], num[32];
	if (snprintf(path, sizeof(path), "%s%s/%s", g_root, SESSIONS_DIR, id) >= (int)sizeof(path) || read_small(path, text, sizeof(text)) < 0)
		return 0; /* gone between readdir and open: logind removed it */
	value_of(text, "CLASS", s->cls, sizeof(s->cls));
	value_of(text, "USER", s->user, sizeof(s->user));
	value_of(text, "STATE", s->state, sizeof(s->state));
	if (strcmp(s->cls, "user") || !s->user[0] || !s->state[0])
		return 0;
	snprintf(s->id, sizeof(s->id), "%s", id);
	value_of(text, "TYPE", s->type, sizeof(s->type));
	value_of(text, "SERVICE", s->service, sizeof(s->service));
	value_of(text, "UID", num, sizeof(num));
	s->uid = (unsigned)strtoul(num, NULL, 10);
	value_of(text, "REMOTE", num, sizeof(num));
	s->remote = num[0] == '1';
	value_of(text, "ACTIVE", num, sizeof(num));
	s->active = num[0] == '1';
	return 1;
}

/* logind's ids are numbers ("3") or c-prefixed ("c1"): shorter first, then byte order, sorts both naturally */
static int by_id(const void *a, const void *b)
{
	const struct session *x = a, *y = b;
	size_t lx = strlen(x->id), ly = strlen(y->id);
	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->id, y->id);
}

/* The SESSIONS payload for the sessions there are now (an absent directory: none). */
static void build(void)
{
	char path[4096];
	int listed = 0, count = 0;
	DIR *d = rpath(path, sizeof(path), SESSIONS_DIR) < 0 ? NULL : opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		/* dot files are logind's temporary files before their rename, and . and .. */
		if (e->d_name[0] == '.' || !valid_id(e->d_name))
			continue;
		struct session s;
		if (!read_session(e->d_name, &s))
			continue;
		count++;
		if (listed < MAX_LISTED)
			found[listed++] = s;
	}
	if (d)
		closedir(d);
	qsort(found, (size_t)listed, sizeof(found[0]), by_id);
	w_begin(&frame, VFG_SESSIONS, watch_id);
	w_u32(&frame, T_SESSION_COUNT, (uint32_t)count);
	for (int i = 0; i < listed; i++) {
		const struct session *s = &found[i];
		size_t at = w_group_begin(&frame, T_SESSION);
		w_str(&frame, T_SESSION_ID, s->id);
		w_str(&frame, T_USER, s->user);
		w_u32(&frame, T_UID, s->uid);
		w_str(&frame, T_CLASS, s->cls);
		if (s->type[0])
			w_str(&frame, T_SESSION_TYPE, s->type);
		w_str(&frame, T_SESSION_STATE, s->state);
		w_u8(&frame, T_REMOTE, (uint8_t)s->remote);
		w_u8(&frame, T_ACTIVE, (uint8_t)s->active);
		if (s->service[0])
			w_str(&frame, T_SERVICE, s->service);
		w_group_end(&frame, at);
	}
}

static void send_if_changed(int always)
{
	build();
	if (w_finish(&frame) < 0) {
		fprintf(stderr, "the session list outgrew the frame size limit; not sent\n");
		return;
	}
	size_t n = frame.len - VFG_HEADER_BYTES;
	if (!always && n == last_len && !memcmp(last, frame.buf + VFG_HEADER_BYTES, n))
		return;
	memcpy(last, frame.buf + VFG_HEADER_BYTES, n);
	last_len = n;
	fprintf(stderr, "SESSIONS: %u user session(s)\n", be32(frame.buf + VFG_HEADER_BYTES + 4));
	if (chan_write(frame.buf, frame.len) != CHAN_OK)
		fprintf(stderr, "could not send SESSIONS to the host: %s\n", strerror(errno));
}

/*
 * Watches the sessions directory, or, while logind has not made it yet, its parent for its creation. Scanning
 * after the watch is in place means no session made in between is missed.
 */
static int arm(void)
{
	char path[4096];
	if (wd_dir >= 0)
		return 0;
	if (rpath(path, sizeof(path), SESSIONS_DIR) == 0)
		wd_dir = inotify_add_watch(ino, path, IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ONLYDIR);
	if (wd_dir >= 0 && wd_parent >= 0) {
		inotify_rm_watch(ino, wd_parent); /* the directory exists now: its parent's other changes are noise */
		wd_parent = -1;
	}
	if (wd_dir >= 0 || wd_parent >= 0)
		return 0;
	if (rpath(path, sizeof(path), SESSIONS_PARENT) == 0)
		wd_parent = inotify_add_watch(ino, path, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
	return wd_parent >= 0 ? 0 : -1;
}

static void stop(void)
{
	if (ino < 0)
		return;
	close(ino);
	ino = wd_dir = wd_parent = -1;
	chan_side(-1, NULL, NULL);
	fprintf(stderr, "the host went away: session watch ended\n");
}

/* The inotify fd is readable: drain it (the events only say "look again"), then look again. */
static void on_events(void)
{
	static char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(ino, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if ((ev->mask & IN_IGNORED) && ev->wd == wd_dir)
				wd_dir = -1; /* the directory itself went away */
			p += sizeof(*ev) + ev->len;
		}
	}
	if (arm() < 0)
		fprintf(stderr, "%s and %s went away: %s\n", SESSIONS_DIR, SESSIONS_PARENT, strerror(errno));
	send_if_changed(0);
}

int start_watch(uint32_t id, struct refusal *why)
{
	watch_id = id;
	if (ino < 0 && (ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		why->code = "internal";
		snprintf(why->message, sizeof(why->message), "inotify_init1: %s", strerror(errno));
		return -1;
	}
	if (arm() < 0) {
		why->code = "internal";
		snprintf(why->message, sizeof(why->message), "cannot watch %s or %s: %s", SESSIONS_DIR, SESSIONS_PARENT, strerror(errno));
		chan_side(-1, NULL, NULL);
		close(ino);
		ino = wd_dir = wd_parent = -1;
		return -1;
	}
	chan_side(ino, on_events, stop);
	fprintf(stderr, "WATCH: session watch started\n");
	send_if_changed(1);
	return 0;
}
