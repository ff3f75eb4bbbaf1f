/*
 * PREPARE: the parent guest right before the cut (what src/template/prepare.ts does with a script). The NIC goes
 * down with no address (a child must never appear on the network as the template), neighbours are forgotten,
 * sshd stops so no child ever serves a template key, per-machine files a child must not inherit are removed,
 * and sync puts the guest's dirty data on the template disk.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* Judged by the outcome (no sshd listener left), not by systemctl's exit code: ssh.socket may not exist. */
static void step_sshd(struct wbuf *w)
{
	const char *argv[] = { g_opt.systemctl, "stop", "ssh.service", "ssh.socket", NULL };
	char out[1024] = "";
	int status = 0;
	struct step s;
	step_begin(&s, w, "sshd");
	if (!g_opt.systemctl) {
		step_note(&s, "skipped: no --systemctl in test mode");
	} else if (run_program(argv, out, sizeof(out), &status) < 0) {
		step_fail(&s, "%s: %s", g_opt.systemctl, strerror(errno));
	} else {
		fact(&s, "systemctl_rc", "%d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
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
	step_begin(&s, w, "sync");
	sync();
	step_end(&s);
}
