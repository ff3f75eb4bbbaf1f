/*
 * The agent's channel to the host: its virtio-serial port in the guest, or an inherited socket (--fd) in tests.
 * A virtio-serial port reads as EOF while no host is connected to QEMU's chardev; the kernel sends SIGIO when one
 * connects, so the agent sleeps in sigtimedwait instead of polling.
 */
#ifndef VFG_PORT_H
#define VFG_PORT_H

#include <stddef.h>

enum {
	CHAN_OK = 0,
	CHAN_EOF = -1,     /* --fd: the peer closed the socket */
	CHAN_RESET = -2,   /* the host went away in the middle of a frame */
	CHAN_TIMEOUT = -3, /* the rest of a frame did not arrive in time */
	CHAN_ERR = -4,
};

int chan_open(void);
/* Reads exactly n bytes; timeout_ms < 0 waits forever. */
int chan_read(void *buf, size_t n, int timeout_ms);
int chan_write(const void *buf, size_t n);
/* Discards input until none arrived for quiet_ms (at most 5 s): the resync after a framing error. */
void chan_drain(int quiet_ms);
/*
 * Another fd the wait for the next frame's header also sleeps on (the session watch's inotify fd): ready() runs
 * when it is readable, gone() once when the host side closes. chan_side(-1, NULL, NULL) removes it.
 */
void chan_side(int side_fd, void (*ready)(void), void (*gone)(void));

#endif
