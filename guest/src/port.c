/* Blocking-style frame I/O over a non-blocking fd, so waits can have deadlines and host absence is visible. */
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

static int fd = -1;
static int is_port;
static int side = -1;
static void (*side_ready)(void);
static void (*side_gone)(void);

void chan_side(int side_fd, void (*ready)(void), void (*gone)(void))
{
	side = side_fd;
	side_ready = ready;
	side_gone = gone;
}

/* The host closed its side: what lives only while it listens (a session watch) ends here. */
static void host_gone(void)
{
	if (side_gone)
		side_gone(); /* it clears the side with chan_side(-1, …) */
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int chan_open(void)
{
	if (g_opt.fd >= 0) {
		fd = g_opt.fd;
	} else {
		fd = open(g_opt.port, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "cannot open %s: %s\n", g_opt.port, strerror(errno));
			return -1;
		}
		is_port = 1;
		/* SIGIO is blocked (main): it only marks a host (dis)connection for sigtimedwait, it never interrupts */
		if (fcntl(fd, F_SETOWN, getpid()) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) < 0) {
			fprintf(stderr, "cannot ask for SIGIO on %s: %s\n", g_opt.port, strerror(errno));
			return -1;
		}
	}
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ? -1 : 0;
}

/*
 * No host on the other end: sleep until the kernel says the host side opened (SIGIO). The 30 s timeout is a
 * safety net only; an idle child without a host wakes twice a minute at most.
 */
static void wait_host(void)
{
	sigset_t set;
	struct timespec t = { .tv_sec = 30 };
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	sigtimedwait(&set, NULL, &t);
}

/*
 * Waits until the channel is readable. Without a deadline (between frames) the side fd is watched too; the channel
 * goes first, so a host that left is seen (EOF) before a side event would write to it.
 */
static int wait_fd(short events, int64_t deadline)
{
	struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = side, .events = POLLIN } };
	int timeout = deadline < 0 ? -1 : (int)(deadline - now_ms());
	if (deadline >= 0 && timeout <= 0)
		return CHAN_TIMEOUT;
	nfds_t n = deadline < 0 && side >= 0 ? 2 : 1;
	int r = poll(p, n, timeout);
	if (r < 0 && errno != EINTR)
		return CHAN_ERR;
	if (r == 0)
		return CHAN_TIMEOUT;
	if (n == 2 && !p[0].revents && (p[1].revents & POLLIN) && side_ready)
		side_ready();
	return CHAN_OK;
}

int chan_read(void *buf, size_t n, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r > 0) {
			got += (size_t)r;
		} else if (r == 0) {
			host_gone();
			if (!is_port)
				return got ? CHAN_RESET : CHAN_EOF;
			if (got)
				return CHAN_RESET; /* the rest of this frame will never come */
			wait_host();
			if (deadline >= 0 && now_ms() >= deadline)
				return CHAN_TIMEOUT;
		} else if (errno == EAGAIN) {
			int rc = wait_fd(POLLIN, deadline);
			if (rc != CHAN_OK)
				return rc;
		} else if (errno != EINTR) {
			return CHAN_ERR;
		}
	}
	return CHAN_OK;
}

int chan_write(const void *buf, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, (const char *)buf + off, n - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return CHAN_ERR;
			/* a port without a host connected says POLLHUP: the write waits for the host, like qemu-ga's */
			if (is_port && (p.revents & POLLHUP) && !(p.revents & POLLOUT))
				wait_host();
			continue;
		}
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET) && !is_port)
			return CHAN_EOF;
		return CHAN_ERR;
	}
	return CHAN_OK;
}

void chan_drain(int quiet_ms)
{
	char scratch[4096];
	int64_t stop = now_ms() + 5000;
	while (now_ms() < stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, quiet_ms);
		if (r <= 0)
			return;
		ssize_t n = read(fd, scratch, sizeof(scratch));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}
