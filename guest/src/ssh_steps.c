/*
 * Fresh SSH host keys per child, born in the guest. Keys a booted template made would be inherited by every
 * child, so they are regenerated unless the marker file says they were made for this very machine id (a second
 * CONFIG with the same identity keeps them). Only ed25519, as in the image (docs/image.md).
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "files.h"
#include "report.h"
#include "sshkey.h"

#define MARKER "/etc/ssh/vmfork-host-keys.machine-id"
#define PRIVATE_KEY "/etc/ssh/ssh_host_ed25519_key"
#define PUBLIC_KEY "/etc/ssh/ssh_host_ed25519_key.pub"

int sshd_pid(void)
{
	char pidfile[4096], v[32], comm[64], path[64];
	rpath(pidfile, sizeof(pidfile), "/run/sshd.pid");
	if (read_first(pidfile, v, sizeof(v)) < 0 || !v[0])
		return 0;
	char *end;
	long pid = strtol(v, &end, 10);
	if (*end || pid <= 1 || pid > 4194304)
		return 0;
	/* a stale pid file may name a reused pid: only a process called sshd counts */
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if (read_first(path, comm, sizeof(comm)) < 0 || strcmp(comm, "sshd"))
		return 0;
	return (int)pid;
}

static int keys_current(const char *mid)
{
	char p[4096], m[64];
	struct stat st;
	if (rpath(p, sizeof(p), PRIVATE_KEY) < 0 || stat(p, &st) < 0 || st.st_size == 0)
		return 0;
	if (rpath(p, sizeof(p), PUBLIC_KEY) < 0 || stat(p, &st) < 0 || st.st_size == 0)
		return 0;
	if (rpath(p, sizeof(p), MARKER) < 0)
		return 0;
	return read_first(p, m, sizeof(m)) == 0 && strcmp(m, mid) == 0;
}

/* Any other host key (another type, a stray file) must not outlive the template. */
static int remove_other_keys(const char *dir, struct step *s)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "ssh_host_", 9) || !strcmp(e->d_name, "ssh_host_ed25519_key") || !strcmp(e->d_name, "ssh_host_ed25519_key.pub"))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
			continue;
		if (unlink(p) < 0 && errno != ENOENT) {
			step_fail(s, "remove %s: %s", p, strerror(errno));
			break;
		}
	}
	closedir(d);
	return s->failed ? -1 : 0;
}

static int generate(const char *dir, const struct config_req *c, struct step *s)
{
	char priv[4096], pub[4096], marker[4096], comment[128], line[512], err[256];
	uint8_t seed[32];
	uint32_t check;
	int changed, rc = -1;
	rpath(priv, sizeof(priv), PRIVATE_KEY);
	rpath(pub, sizeof(pub), PUBLIC_KEY);
	rpath(marker, sizeof(marker), MARKER);
	snprintf(comment, sizeof(comment), "root@%s", c->hostname);
	if (mkdir_p(dir, 0755) < 0) {
		step_fail(s, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	/* from the kernel CRNG, reseeded with host entropy by the rng step just before */
	if (getrandom(seed, sizeof(seed), 0) != sizeof(seed) || getrandom(&check, sizeof(check), 0) != sizeof(check)) {
		step_fail(s, "getrandom: %s", strerror(errno));
		goto out;
	}
	if (sshkey_write_ed25519(priv, pub, seed, check, comment, line, sizeof(line), err, sizeof(err)) < 0) {
		step_fail(s, "%s", err);
		goto out;
	}
	if (put_line(marker, c->machine_id, &changed) < 0) {
		step_fail(s, "write %s: %s", marker, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(seed, sizeof(seed));
	return rc;
}

void step_ssh_host_keys(struct wbuf *w, const struct config_req *c, struct kicks *k)
{
	char dir[4096], marker[4096], pattern[4096], v[512];
	struct step s;
	int gen = 0;
	step_begin(&s, w, "ssh-host-keys");
	rpath(dir, sizeof(dir), "/etc/ssh");
	rpath(marker, sizeof(marker), MARKER);
	if (!keys_current(c->machine_id)) {
		if (remove_other_keys(dir, &s) == 0 && generate(dir, c, &s) == 0)
			gen = 1;
	}
	fact(&s, "generated", "%d", gen);
	int pid = sshd_pid();
	if (!s.failed) {
		if (gen && pid) {
			/* what `systemctl reload ssh` does: sshd re-execs with the new keys, sessions survive; a signal, no exec */
			if (kill(pid, SIGHUP) < 0)
				step_fail(&s, "SIGHUP to sshd %d: %s", pid, strerror(errno));
			else
				fact(&s, "sshd", "reloaded");
		} else if (!pid) {
			k->ssh = 1; /* started after the answer: ExecStartPre and sshd's start cost the single vCPU */
			fact(&s, "sshd", "starting");
		} else {
			fact(&s, "sshd", "running");
		}
	}
	read_first(marker, v, sizeof(v));
	fact(&s, "marker", "%s", v);
	glob_t g;
	if (rpath(pattern, sizeof(pattern), "/etc/ssh/ssh_host_*_key.pub") == 0 && glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (read_first(g.gl_pathv[i], v, sizeof(v)) == 0 && v[0])
				fact(&s, "pubkey", "%s", v);
		globfree(&g);
	}
	step_end(&s);
}
