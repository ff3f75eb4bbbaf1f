/* What the parts of vmfork-guest share: its options, its fork state, and the parsed requests. */
#ifndef VFG_AGENT_H
#define VFG_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define TEMPLATE_ID_MAX 128
#define NONCE_BYTES 16
#define HOSTNAME_MAX 64
#define ENTROPY_MIN 32
#define ENTROPY_MAX 512
#define SEED_MIN 32
#define SEED_MAX 4096

struct options {
	const char *port;      /* a virtio-serial port (the guest), or NULL with fd */
	int fd;                /* --fd N: an inherited socket (tests); -1 otherwise */
	const char *systemctl; /* program for the service kicks; NULL: none (test mode without --systemctl) */
	int frame_timeout_ms;  /* how long the rest of a frame may take once its header arrived */
};

/*
 * The agent's fork state. It lives in memory (every child inherits it with the template's RAM) and in
 * /run/vmfork-guest.state, so an agent restarted by systemd in a child still knows which fork it belongs to.
 */
struct fork_state {
	const char *state; /* "idle" | "fork-pending" | "configured" */
	char template_id[TEMPLATE_ID_MAX + 1];
	uint8_t nonce[NONCE_BYTES];
};

struct prepare_req {
	char template_id[TEMPLATE_ID_MAX + 1];
	char ifname[16];
	int fork;
};

struct config_req {
	char template_id[TEMPLATE_ID_MAX + 1];
	uint8_t nonce[NONCE_BYTES];
	char hostname[HOSTNAME_MAX + 1];
	char mac_text[18];
	uint8_t mac[6];
	int has_ipv4;
	char ipv4_text[16], gateway_text[16];
	uint8_t ipv4[4], gateway[4];
	int prefix;
	char machine_id[33];
	char ifname[16];
	uint8_t entropy[ENTROPY_MAX];
	size_t entropy_len;
	uint8_t seed[SEED_MAX];
	size_t seed_len;
	uint64_t host_clock_ns;
};

/* Service work a step asks for, done after the answer is sent (off the host's critical path). */
struct kicks {
	int journald; /* restart: the machine id changed */
	int ssh;      /* start: sshd is not running */
};

extern struct options g_opt;
extern struct fork_state g_fork;

/* A refusal: a stable code for the host (PROTOCOL.md) and a human message. */
struct refusal {
	const char *code;
	char message[256];
};

int parse_prepare(const uint8_t *p, size_t n, struct prepare_req *out, struct refusal *why);
int parse_config(const uint8_t *p, size_t n, struct config_req *out, struct refusal *why);
int parse_hello_req(const uint8_t *p, size_t n, struct refusal *why);
int parse_watch(const uint8_t *p, size_t n, struct refusal *why);
/* WATCH: sends SESSIONS now and on every change until the host goes away; -1 (nothing sent) when it cannot watch. */
int start_watch(uint32_t id, struct refusal *why);

void run_prepare(struct wbuf *w, const struct prepare_req *req);
void apply_config(struct wbuf *w, const struct config_req *c, struct kicks *k);
void run_kicks(struct wbuf *w, const struct kicks *k);

/* The individual steps (apply_config runs them in the identity pipeline's order). */
void step_clock(struct wbuf *w, const struct config_req *c);
void step_rng(struct wbuf *w, const struct config_req *c);
void step_machine_id(struct wbuf *w, const struct config_req *c, struct kicks *k);
void step_hostname(struct wbuf *w, const struct config_req *c);
void step_mac(struct wbuf *w, const struct config_req *c);
void step_ipv6_link_local(struct wbuf *w, const struct config_req *c);
void step_ipv4(struct wbuf *w, const struct config_req *c);
void step_neighbours_leases(struct wbuf *w, const struct config_req *c);
void step_ssh_host_keys(struct wbuf *w, const struct config_req *c, struct kicks *k);
void step_random_seed(struct wbuf *w, const struct config_req *c);

struct nl;
struct step;
/* Deletes the neighbour entries `ip neigh flush` would, on one interface (0: all); 0 or -errno. */
int flush_neighbours(struct nl *nl, int ifindex);
/* Removes every DHCP lease file (facts `removed`); returns how many could not be removed. */
int remove_leases(struct step *s);
/* The pid of the running sshd listener (pid file checked against /proc), 0 when none. */
int sshd_pid(void);

/* Runs a program with no shell and stdin from /dev/null; stdout+stderr (truncated) into out. */
int run_program(const char *const argv[], char *out, size_t cap, int *status);
/* The boot id the kernel made at boot (inherited by every child: the proof no reboot happened). */
void read_boot_id(char *out, size_t cap);
/* Lease files of every DHCP client Debian ships (the same list as src/identity). */
extern const char *const LEASE_GLOBS[];

#endif
