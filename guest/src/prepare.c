/*
 * PREPARE: the parent guest right before the cut (what src/template/prepare.ts does with a script). The boot is
 * waited for first (see step_boot), then the NIC goes
 * down with no address (a child must never appear on the network as the template), neighbours are forgotten,
 * sshd stops so no child ever serves a template key, per-machine files a child must not inherit are removed,
 * and sync puts the guest's dirty data on the template disk.
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "files.h"
#include "nl.h"
#include "report.h"

static struct nl_addr addrs[NL_MAX_ITEMS];

static void step_link(struct wbuf *w, const struct prepare_req *req, struct nl *nl, int idx)
{
	struct step s;
	int rc;
	step_begin(&s, w, "link-down");
	if (!idx)
		step_fail(&s, "no interface %s", req->ifname);
	else if ((rc = nl_link_set_up(nl, idx, 0)) < 0)
		step_fail(&s, "link %s down: %s", req->ifname, strerror(-rc));
	step_end(&s);

	step_begin(&s, w, "addresses");
	int n = idx ? nl_addr_list(nl, AF_UNSPEC, idx, addrs, NL_MAX_ITEMS) : 0;
	for (int i = 0; i < n && !s.failed; i++)
		if ((rc = nl_addr_del(nl, &addrs[i])) < 0 && rc != -EADDRNOTAVAIL)
			step_fail(&s, "flush %s: %s", req->ifname, strerror(-rc));
	n = idx ? nl_addr_list(nl, AF_UNSPEC, idx, addrs, NL_MAX_ITEMS) : 0;
	fact(&s, "left", "%d", n < 0 ? -1 : n);
	if (n != 0)
		step_fail(&s, "%d address(es) left on %s", n, req->ifname);
	step_end(&s);

	step_begin(&s, w, "neighbours");
	if ((rc = flush_neighbours(nl, 0)) < 0)
		step_fail(&s, "neigh flush: %s", strerror(-rc));
	step_end(&s);
}

/*
 * vmfork-guest starts as soon as its port appears, which may be before systemd has finished booting. A job still
 * queued at the cut would run in every child after its resume: N times the same work, and some of it visible — a
 * serial-getty starting in a child hangs up ttyS0 (systemd's TTYVHangup), so whatever the child's user writes
 * there fails with EIO; an ifup still pending would bring the NIC back up after link-down. So the cut waits for
 * `is-system-running` to leave starting. Bounded: a boot still running after BOOT_WAIT_S is cut anyway, and says so
 * (a unit that hangs must not make a template impossible; its state is in the fact).
 */
#define BOOT_WAIT_S "90"

/*
 * Runs a systemctl command line for step S: skipped in test mode (no --systemctl), a failed step when it cannot be
 * started. Returns its exit code (128 + signal), or -1 when it did not run.
 */
static int systemctl_in_step(struct step *s, const char *const argv[], char *out, size_t cap)
{
	int status = 0;
	if (!g_opt.systemctl) {
		step_note(s, "skipped: no --systemctl in test mode");
		return -1;
	}
	if (run_program(argv, out, cap, &status) < 0) {
		step_fail(s, "%s: %s", argv[0], strerror(errno));
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void step_boot(struct wbuf *w)
{
	const char *argv[] = { "/usr/bin/timeout", BOOT_WAIT_S, g_opt.systemctl, "is-system-running", "--wait", NULL };
	char out[256] = "";
	struct step s;
	step_begin(&s, w, "boot");
	int rc = systemctl_in_step(&s, argv, out, sizeof(out));
	if (rc >= 0) {
		out[strcspn(out, "\n")] = 0;
		fact(&s, "state", "%s", rc == 124 ? "starting" : out);
		if (rc == 124)
			step_note(&s, "the boot had not finished after " BOOT_WAIT_S " s: cut with jobs still queued");
	}
	step_end(&s);
}

/*
 * udevd keeps its workers (each a forked udevd) for 3 s after its queue empties, then kills them. A cut inside that
 * window freezes live workers into the template, and every child pays for killing and reaping them, in the middle
 * of its identity steps: measured under TCG, ten workers left made each child's identity ~300 ms slower. So the
 * cut waits for udev's queue to settle and its idle workers to go. Bounded: after UDEV_IDLE_S it cuts anyway and
 * says how many were left (a slow template is better than none).
 */
#define UDEV_IDLE_S 15
#define UDEV_SETTLE_S "30"
#define UDEV_WORKER "(udev-worker)"

static int udev_workers(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[64], comm[64];
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/comm", e->d_name);
		if (read_first(path, comm, sizeof(comm)) == 0 && strcmp(comm, UDEV_WORKER) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

static void step_udev(struct wbuf *w)
{
	const char *argv[] = { "/usr/bin/timeout", UDEV_SETTLE_S, "udevadm", "settle", NULL };
	char out[256] = "";
	struct step s;
	struct timespec t0;
	step_begin(&s, w, "udev-idle");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* in test mode (no --systemctl) there is no guest udev: the host's workers are not ours to wait for */
	if (systemctl_in_step(&s, argv, out, sizeof(out)) < 0)
		goto end;
	int n = udev_workers();
	while (n > 0 && ms_since(&t0) < UDEV_IDLE_S * 1000L) {
		struct timespec tick = { 0, 100 * 1000000L };
		nanosleep(&tick, NULL);
		n = udev_workers();
	}
	fact(&s, "workers_left", "%d", n);
	fact(&s, "waited_ms", "%ld", ms_since(&t0));
	if (n > 0)
		step_note(&s, "%d udev worker(s) still there after %d s: every child will reap them", n, UDEV_IDLE_S);
end:
	step_end(&s);
}

/* Judged by the outcome (no sshd listener left), not by systemctl's exit code: ssh.socket may not exist. */
static void step_sshd(struct wbuf *w)
{
	const char *argv[] = { g_opt.systemctl, "stop", "ssh.service", "ssh.socket", NULL };
	char out[1024] = "";
	struct step s;
	step_begin(&s, w, "sshd");
	int rc = systemctl_in_step(&s, argv, out, sizeof(out));
	if (rc >= 0)
		fact(&s, "systemctl_rc", "%d", rc);
	int pid = sshd_pid();
	if (pid)
		step_fail(&s, "sshd (pid %d) still runs: %s", pid, out);
	step_end(&s);
}

static void step_files(struct wbuf *w)
{
	static const char *const paths[] = { "/etc/ssh/ssh_host_*", "/var/lib/systemd/random-seed", NULL };
	struct step s;
	step_begin(&s, w, "identity-files");
	int left = remove_globs(&s, paths) + remove_leases(&s);
	fact(&s, "left", "%d", left);
	if (left)
		step_fail(&s, "%d file(s) could not be removed", left);
	step_end(&s);
}

void run_prepare(struct wbuf *w, const struct prepare_req *req)
{
	struct nl nl;
	struct step s;
	step_boot(w);
	int rc = nl_open(&nl, 0);
	if (rc < 0) {
		step_begin(&s, w, "link-down");
		step_fail(&s, "netlink: %s", strerror(-rc));
		step_end(&s);
	} else {
		step_link(w, req, &nl, (int)if_nametoindex(req->ifname));
		nl_close(&nl);
	}
	step_sshd(w);
	step_files(w);
	/* last before sync: the steps above may still have queued a uevent */
	step_udev(w);
	step_begin(&s, w, "sync");
	sync();
	step_end(&s);
}
