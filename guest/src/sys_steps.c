/*
 * Identity steps that are not about the network: clock, CRNG, machine id, hostname, random seed. Each does its
 * work with system calls and then reports what the guest now shows (facts), like src/identity's shell steps.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "files.h"
#include "report.h"

#define PATHBUF 4096

/*
 * Sets the clock to the host's time stamped into CONFIG just before it was sent: the error is the transit time
 * (well under a millisecond on virtio-serial once the child runs). No RTC write: QEMU's RTC follows the host's.
 */
void step_clock(struct wbuf *w, const struct config_req *c)
{
	struct step s;
	step_begin(&s, w, "clock");
	uint64_t before = real_ns();
	struct timespec t = { .tv_sec = (time_t)(c->host_clock_ns / 1000000000u), .tv_nsec = (long)(c->host_clock_ns % 1000000000u) };
	if (clock_settime(CLOCK_REALTIME, &t) < 0) {
		step_fail(&s, "clock_settime: %s", strerror(errno));
	} else {
		int64_t d = (int64_t)(c->host_clock_ns - before);
		uint64_t a = d < 0 ? (uint64_t)-d : (uint64_t)d;
		fact(&s, "stepped", "%c%llu.%09llu", d < 0 ? '-' : '+', (unsigned long long)(a / 1000000000u), (unsigned long long)(a % 1000000000u));
	}
	fact(&s, "date_ns", "%llu", (unsigned long long)real_ns());
	step_end(&s);
}

/* How often the kernel logged a vmgenid reseed: detail for the host, -1 when /dev/kmsg cannot be read. */
static int vmgenid_reseeds(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char rec[8192];
	int n = 0;
	for (;;) {
		ssize_t r = read(fd, rec, sizeof(rec) - 1);
		if (r < 0 && errno == EPIPE)
			continue; /* a record was overwritten while we read: skip it */
		if (r <= 0)
			break;
		rec[r] = 0;
		if (strstr(rec, "crng reseeded due to virtual machine fork"))
			n++;
	}
	close(fd);
	return n;
}

/*
 * Host entropy into the CRNG, credited (RNDADDENTROPY), then RNDRESEEDCRNG so it is used now rather than at the
 * next scheduled reseed. The vmgenid reseed already happened at resume; this makes a child's stream unpredictable
 * even to someone who knows the template's memory and the guid on QEMU's command line. Both ioctls need
 * CAP_SYS_ADMIN in the initial user namespace: the namespace tests get EPERM here, and the host stays untouched.
 */
void step_rng(struct wbuf *w, const struct config_req *c)
{
	struct step s;
	struct {
		int entropy_count;
		int buf_size;
		uint8_t buf[ENTROPY_MAX];
	} info;
	step_begin(&s, w, "rng");
	info.entropy_count = (int)c->entropy_len * 8;
	info.buf_size = (int)c->entropy_len;
	memcpy(info.buf, c->entropy, c->entropy_len);
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		step_fail(&s, "/dev/urandom: %s", strerror(errno));
	} else if (ioctl(fd, RNDADDENTROPY, &info) < 0) {
		step_fail(&s, "RNDADDENTROPY: %s", strerror(errno));
	} else {
		fact(&s, "pushed_bytes", "%zu", c->entropy_len);
		if (ioctl(fd, RNDRESEEDCRNG) < 0)
			step_fail(&s, "RNDRESEEDCRNG: %s", strerror(errno));
		else
			fact(&s, "reseeded", "1");
	}
	explicit_bzero(&info, sizeof(info));
	if (fd >= 0)
		close(fd);
	int n = vmgenid_reseeds();
	if (n >= 0)
		fact(&s, "vmgenid_reseeds", "%d", n);
	else
		fact(&s, "vmgenid_reseeds", "%s", "");
	step_end(&s);
}

/*
 * /etc/machine-id (+ /var/lib/dbus/machine-id when it is a file, not Debian's symlink). A first boot with an
 * empty file leaves systemd's transient id (/run/machine-id) bind-mounted over it: that mount is removed so the
 * write lands on disk. journald names its journal after the id it read at start, so it is restarted after the
 * answer when the id changed; dbus-daemon and PID 1 keep the old id until the next boot.
 */
void step_machine_id(struct wbuf *w, const struct config_req *c, struct kicks *k)
{
	char etc[PATHBUF], run[PATHBUF], dbus[PATHBUF], dbusdir[PATHBUF], cur[128] = "", v[128];
	struct step s;
	struct stat st;
	int changed;
	step_begin(&s, w, "machine-id");
	rpath(etc, sizeof(etc), "/etc/machine-id");
	rpath(run, sizeof(run), "/run/machine-id");
	rpath(dbus, sizeof(dbus), "/var/lib/dbus/machine-id");
	rpath(dbusdir, sizeof(dbusdir), "/var/lib/dbus");
	for (int i = 0; i < 4 && same_file(run, etc); i++) {
		if (umount2(etc, 0) < 0) {
			step_fail(&s, "umount %s: %s", etc, strerror(errno));
			break;
		}
	}
	if (!s.failed && read_first(etc, cur, sizeof(cur)) < 0)
		step_fail(&s, "read %s: %s", etc, strerror(errno));
	if (!s.failed && put_line(etc, c->machine_id, &changed) < 0)
		step_fail(&s, "write %s: %s", etc, strerror(errno));
	int dbus_link = lstat(dbus, &st) == 0 && S_ISLNK(st.st_mode);
	if (!s.failed && !dbus_link && stat(dbusdir, &st) == 0 && S_ISDIR(st.st_mode) && put_line(dbus, c->machine_id, &changed) < 0)
		step_fail(&s, "write %s: %s", dbus, strerror(errno));
	if (!s.failed) {
		if (strcmp(cur, c->machine_id) == 0) {
			fact(&s, "journald", "unchanged");
		} else {
			k->journald = 1;
			fact(&s, "journald", "restart-queued");
		}
	}
	read_first(etc, v, sizeof(v));
	fact(&s, "etc", "%s", v);
	if (stat(dbus, &st) == 0) {
		read_first(dbus, v, sizeof(v));
		fact(&s, "dbus", "%s", v);
	}
	step_end(&s);
}

/* The 127.0.1.1 line Debian uses to resolve the machine's own name: `fqdn short` for a dotted name. */
static void hosts_line(const char *hostname, char *out, size_t cap)
{
	const char *dot = strchr(hostname, '.');
	if (dot)
		snprintf(out, cap, "127.0.1.1\t%s\t%.*s", hostname, (int)(dot - hostname), hostname);
	else
		snprintf(out, cap, "127.0.1.1\t%s", hostname);
}

/* Kernel hostname (sethostname), /etc/hostname, the /etc/hosts line: all three read back. */
void step_hostname(struct wbuf *w, const struct config_req *c)
{
	char etc[PATHBUF], hosts[PATHBUF], line[160], v[128];
	static char text[65536];
	struct step s;
	struct utsname u;
	int changed;
	step_begin(&s, w, "hostname");
	rpath(etc, sizeof(etc), "/etc/hostname");
	rpath(hosts, sizeof(hosts), "/etc/hosts");
	hosts_line(c->hostname, line, sizeof(line));
	if (sethostname(c->hostname, strlen(c->hostname)) < 0)
		step_fail(&s, "sethostname: %s", strerror(errno));
	if (!s.failed && put_line(etc, c->hostname, &changed) < 0)
		step_fail(&s, "write %s: %s", etc, strerror(errno));
	if (!s.failed && set_hosts_line(hosts, line, &changed) < 0)
		step_fail(&s, "write %s: %s", hosts, strerror(errno));
	if (uname(&u) == 0)
		fact(&s, "kernel", "%s", u.nodename);
	read_first(etc, v, sizeof(v));
	fact(&s, "etc", "%s", v);
	if (read_small(hosts, text, sizeof(text)) > 0) {
		for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
			if (!strncmp(l, "127.0.1.1", 9) && (l[9] == ' ' || l[9] == '\t'))
				fact(&s, "hosts", "%s", l);
	}
	step_end(&s);
}

/*
 * systemd-random-seed mixes this file in at the next boot (never credited), so a child that reboots does not
 * start from its template's seed. Always mode 0600, owner root.
 */
void step_random_seed(struct wbuf *w, const struct config_req *c)
{
	char dir[PATHBUF], f[PATHBUF];
	struct step s;
	struct stat st;
	step_begin(&s, w, "random-seed");
	rpath(dir, sizeof(dir), "/var/lib/systemd");
	rpath(f, sizeof(f), "/var/lib/systemd/random-seed");
	if (mkdir_p(dir, 0755) < 0)
		step_fail(&s, "mkdir %s: %s", dir, strerror(errno));
	if (!s.failed && write_atomic(f, c->seed, c->seed_len, 0600, FORCE_MODE) < 0)
		step_fail(&s, "write %s: %s", f, strerror(errno));
	if (stat(f, &st) == 0) {
		char owner[16];
		if (st.st_uid == 0)
			snprintf(owner, sizeof(owner), "root");
		else
			snprintf(owner, sizeof(owner), "%u", (unsigned)st.st_uid);
		fact(&s, "stat", "%lld %o %s", (long long)st.st_size, (unsigned)(st.st_mode & 07777), owner);
	}
	step_end(&s);
}
