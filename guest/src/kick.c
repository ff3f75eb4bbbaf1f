/*
 * Programs the agent runs: only off the critical path (service kicks after the answer, systemctl stop while
 * preparing a template). Everything identity-related is done with system calls instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "files.h"
#include "report.h"

int run_program(const char *const argv[], char *out, size_t cap, int *status)
{
	static char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
	posix_spawn_file_actions_t fa;
	int p[2];
	pid_t pid;
	size_t n = 0;
	out[0] = 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, env);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		errno = rc;
		return -1;
	}
	for (;;) {
		char scratch[512];
		ssize_t r = read(p[0], n + 1 < cap ? out + n : scratch, n + 1 < cap ? cap - 1 - n : sizeof(scratch));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (n + 1 < cap)
			n += (size_t)r;
	}
	out[n] = 0;
	close(p[0]);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

void read_boot_id(char *out, size_t cap)
{
	if (read_first("/proc/sys/kernel/random/boot_id", out, cap) < 0)
		out[0] = 0;
}

/* Output lines of a program as facts KEY (at most 8: a detail, not a log). */
static void output_facts(struct step *s, const char *key, char *text)
{
	int n = 0;
	for (char *l = strtok(text, "\n"); l && n < 8; l = strtok(NULL, "\n"), n++)
		fact(s, key, "%s", l);
}

/*
 * The restarts CONFIG asked for, in ONE `systemctl --no-block reload-or-restart` (each cold systemctl costs
 * ~0.3 s of the single vCPU under TCG): journald after a machine-id change, ssh.service when sshd is not
 * running. --no-block: the jobs are queued, not waited for.
 */
void run_kicks(struct wbuf *w, const struct kicks *k)
{
	const char *argv[8] = { g_opt.systemctl, "--no-block", "reload-or-restart" };
	int argc = 3, status = 0;
	char out[2048];
	struct step s;
	step_begin(&s, w, "units");
	if (k->journald)
		argv[argc++] = "systemd-journald.service";
	if (k->ssh)
		argv[argc++] = "ssh.service";
	argv[argc] = NULL;
	if (argc == 3) {
		step_note(&s, "nothing to restart");
	} else if (!g_opt.systemctl) {
		step_note(&s, "skipped: no --systemctl in test mode");
	} else if (run_program(argv, out, sizeof(out), &status) < 0) {
		step_fail(&s, "%s: %s", g_opt.systemctl, strerror(errno));
	} else {
		int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		for (int i = 3; i < argc; i++)
			fact(&s, "unit", "%s", argv[i]);
		fact(&s, "unit_job_rc", "%d", rc);
		output_facts(&s, "unit_job_stderr", out);
		if (rc != 0)
			step_fail(&s, "systemctl reload-or-restart exited %d", rc);
	}
	step_end(&s);
}
