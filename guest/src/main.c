/*
 * vmfork-guest: the resident guest agent (docs/guest-agent.md, guest/PROTOCOL.md). One request at a time:
 * HELLO answers the handshake, PREPARE readies a template's parent and then asks to be forked (FORK_ME), and
 * CONFIG — which arrives in every child, on the very read the parent was blocked in at the cut — gives the child
 * its identity, applied with system calls; service kicks follow the answer.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent.h"
#include "files.h"
#include "port.h"
#include "report.h"
#include "sshkey.h"

#define RESYNC_QUIET_MS 200
#define STATE_FILE "/run/vmfork-guest.state"

struct options g_opt = { .fd = -1, .frame_timeout_ms = 10000 };
struct fork_state g_fork = { .state = "idle" };

static struct wbuf out;
static uint8_t in[VFG_MAX_PAYLOAD];
static struct config_req config; /* static: it holds entropy and is wiped after use */

static const char *const CAPABILITIES[] = { "prepare", "fork-me", "config", "kick", "netlink", "ssh-ed25519", "sessions", NULL };

static void send_frame(void)
{
	if (w_finish(&out) < 0) {
		uint32_t id = be32(out.buf + 4);
		w_begin(&out, VFG_ERROR, id);
		w_str(&out, T_ERROR_CODE, "internal");
		w_str(&out, T_MESSAGE, "the answer outgrew the frame size limit");
		w_finish(&out);
	}
	if (chan_write(out.buf, out.len) != CHAN_OK)
		fprintf(stderr, "could not send a frame to the host: %s\n", strerror(errno));
}

static void send_error(uint32_t id, const char *code, const char *message)
{
	fprintf(stderr, "refused request %u: %s: %s\n", id, code, message);
	w_begin(&out, VFG_ERROR, id);
	w_str(&out, T_ERROR_CODE, code);
	w_str(&out, T_MESSAGE, message);
	send_frame();
}

static void hex(const uint8_t *b, size_t n, char *out_hex)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out_hex + 2 * i, "%02x", b[i]);
}

/* /run is RAM: a child inherits the file with the template's memory, and a reboot forgets it (no longer a fork). */
static void save_state(void)
{
	char path[4096], text[512], nonce[2 * NONCE_BYTES + 1];
	hex(g_fork.nonce, NONCE_BYTES, nonce);
	int n = snprintf(text, sizeof(text), "state=%s\ntemplate=%s\nnonce=%s\n", g_fork.state, g_fork.template_id, nonce);
	if (rpath(path, sizeof(path), STATE_FILE) < 0 || write_atomic(path, text, (size_t)n, 0600, FORCE_MODE) < 0)
		fprintf(stderr, "cannot save %s: %s\n", STATE_FILE, strerror(errno));
}

static void load_state(void)
{
	char path[4096], text[512], state[32] = "", tid[TEMPLATE_ID_MAX + 1] = "", nonce[2 * NONCE_BYTES + 1] = "";
	if (rpath(path, sizeof(path), STATE_FILE) < 0 || read_small(path, text, sizeof(text)) <= 0)
		return;
	if (sscanf(text, "state=%31s\ntemplate=%128s\nnonce=%32s", state, tid, nonce) != 3 || strlen(nonce) != 2 * NONCE_BYTES)
		return;
	for (int i = 0; i < NONCE_BYTES; i++)
		if (sscanf(nonce + 2 * i, "%2hhx", &g_fork.nonce[i]) != 1)
			return;
	if (!strcmp(state, "fork-pending"))
		g_fork.state = "fork-pending";
	else if (!strcmp(state, "configured"))
		g_fork.state = "configured";
	else
		return;
	snprintf(g_fork.template_id, sizeof(g_fork.template_id), "%s", tid);
	fprintf(stderr, "resumed fork state %s of template %s\n", g_fork.state, g_fork.template_id);
}

static void put_common(struct wbuf *w)
{
	char boot_id[64];
	read_boot_id(boot_id, sizeof(boot_id));
	w_str(w, T_BOOT_ID, boot_id);
	w_u64(w, T_CLOCK_NS, real_ns());
}

static void on_hello(uint32_t id, size_t n)
{
	struct refusal why;
	if (parse_hello_req(in, n, &why) < 0)
		return send_error(id, why.code, why.message);
	w_begin(&out, VFG_HELLO, id);
	w_u32(&out, T_PROTOCOL, VFG_PROTOCOL_VERSION);
	w_str(&out, T_AGENT_VERSION, VFG_AGENT_VERSION);
	for (int i = 0; CAPABILITIES[i]; i++)
		w_str(&out, T_CAPABILITY, CAPABILITIES[i]);
	w_str(&out, T_STATE, g_fork.state);
	if (g_fork.template_id[0])
		w_str(&out, T_TEMPLATE_ID, g_fork.template_id);
	w_u32(&out, T_PID, (uint32_t)getpid());
	w_u32(&out, T_MAX_PAYLOAD, VFG_MAX_PAYLOAD);
	put_common(&out);
	send_frame();
}

/* True when every T_STEP group of the frame being built says ok. */
static int all_ok(const struct wbuf *w)
{
	struct reader r = { w->buf + VFG_HEADER_BYTES, w->len - VFG_HEADER_BYTES };
	struct field f, g;
	while (r_next(&r, &f) == 1) {
		struct reader sub = { f.val, f.len };
		while (f.tag == T_STEP && r_next(&sub, &g) == 1)
			if (g.tag == T_STEP_OK && (g.len != 1 || g.val[0] != 1))
				return 0;
	}
	return 1;
}

static void on_prepare(uint32_t id, size_t n)
{
	struct prepare_req req;
	struct refusal why;
	if (parse_prepare(in, n, &req, &why) < 0)
		return send_error(id, why.code, why.message);
	fprintf(stderr, "PREPARE for template %s (fork: %d)\n", req.template_id, req.fork);
	uint64_t t0 = mono_us();
	w_begin(&out, VFG_PREPARED, id);
	run_prepare(&out, &req);
	int ok = all_ok(&out);
	w_u32(&out, T_TOTAL_US, (uint32_t)(mono_us() - t0));
	put_common(&out);
	send_frame();
	if (!req.fork || !ok)
		return;
	/* the nonce every child's CONFIG must carry: drawn here, so only the host that saw FORK_ME knows it */
	if (getrandom(g_fork.nonce, NONCE_BYTES, 0) != NONCE_BYTES)
		return send_error(id, "internal", "getrandom failed: no nonce, no fork");
	snprintf(g_fork.template_id, sizeof(g_fork.template_id), "%s", req.template_id);
	g_fork.state = "fork-pending";
	save_state();
	w_begin(&out, VFG_FORK_ME, id);
	w_str(&out, T_TEMPLATE_ID, g_fork.template_id);
	w_bytes(&out, T_NONCE, g_fork.nonce, NONCE_BYTES);
	put_common(&out);
	fprintf(stderr, "FORK_ME sent; waiting for a configuration\n");
	send_frame();
	/* The host freezes the VM now. The next read returns in each child, with that child's CONFIG. */
}

/* Constant time, so a peer cannot learn the nonce byte by byte from how fast it is refused. */
static int same_nonce(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;
	for (int i = 0; i < NONCE_BYTES; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

static void on_config(uint32_t id, size_t n)
{
	struct refusal why;
	struct kicks k = { 0, 0 };
	if (parse_config(in, n, &config, &why) < 0) {
		explicit_bzero(&config, sizeof(config));
		return send_error(id, why.code, why.message);
	}
	char msg[400];
	const char *code = NULL;
	if (!strcmp(g_fork.state, "idle")) {
		code = "not-forked";
		snprintf(msg, sizeof(msg), "this agent never asked to be forked (no FORK_ME): a configuration is for a forked child");
	} else if (strcmp(config.template_id, g_fork.template_id)) {
		code = "wrong-template";
		snprintf(msg, sizeof(msg), "the configuration is for template %s, this guest was forked from template %s", config.template_id,
			 g_fork.template_id);
	} else if (!same_nonce(config.nonce, g_fork.nonce)) {
		code = "wrong-nonce";
		snprintf(msg, sizeof(msg), "the configuration's nonce is not the one this guest's FORK_ME sent");
	}
	if (code) {
		explicit_bzero(&config, sizeof(config));
		return send_error(id, code, msg);
	}
	fprintf(stderr, "CONFIG for %s (template %s)\n", config.hostname, config.template_id);
	uint64_t t0 = mono_us();
	w_begin(&out, VFG_REPORT, id);
	apply_config(&out, &config, &k);
	explicit_bzero(&config, sizeof(config));
	w_u32(&out, T_TOTAL_US, (uint32_t)(mono_us() - t0));
	put_common(&out);
	g_fork.state = "configured";
	save_state();
	send_frame();
	/* after the answer: the host's ready time does not wait for systemd */
	w_begin(&out, VFG_KICKED, id);
	run_kicks(&out, &k);
	send_frame();
}

void apply_config(struct wbuf *w, const struct config_req *c, struct kicks *k)
{
	/* the identity pipeline's order (src/identity/pipeline.ts says why) */
	step_clock(w, c);
	step_rng(w, c);
	step_machine_id(w, c, k);
	step_hostname(w, c);
	step_mac(w, c);
	step_ipv6_link_local(w, c);
	step_ipv4(w, c);
	step_neighbours_leases(w, c);
	step_ssh_host_keys(w, c, k);
	step_random_seed(w, c);
}

static void on_watch(uint32_t id, size_t n)
{
	struct refusal why;
	if (parse_watch(in, n, &why) < 0 || start_watch(id, &why) < 0)
		send_error(id, why.code, why.message);
}

/* A framing error means the stream position is lost: answer, then drop input until the host pauses. */
static void resync(uint32_t id, const char *code, const char *message)
{
	send_error(id, code, message);
	chan_drain(RESYNC_QUIET_MS);
}

static int serve(void)
{
	uint8_t h[VFG_HEADER_BYTES];
	char msg[160];
	for (;;) {
		int rc = chan_read(h, sizeof(h), -1);
		if (rc == CHAN_EOF)
			return 0;
		if (rc == CHAN_RESET)
			continue;
		if (rc != CHAN_OK)
			return 1;
		uint32_t id = be32(h + 4), len = be32(h + 8);
		if (h[0] != 'V' || h[1] != 'F') {
			resync(0, "bad-magic", "a frame must start with \"VF\"");
			continue;
		}
		if (len > VFG_MAX_PAYLOAD) {
			snprintf(msg, sizeof(msg), "a payload of %u bytes exceeds the limit of %u", len, VFG_MAX_PAYLOAD);
			resync(id, "frame-too-large", msg);
			continue;
		}
		rc = chan_read(in, len, g_opt.frame_timeout_ms);
		if (rc == CHAN_EOF)
			return 0;
		if (rc == CHAN_TIMEOUT) {
			snprintf(msg, sizeof(msg), "the payload did not arrive within %d ms", g_opt.frame_timeout_ms);
			resync(id, "incomplete-frame", msg);
			continue;
		}
		if (rc != CHAN_OK)
			continue;
		if (h[2] != VFG_PROTOCOL_VERSION) {
			snprintf(msg, sizeof(msg), "protocol version %u is not supported; this agent speaks %u", h[2], VFG_PROTOCOL_VERSION);
			send_error(id, "unsupported-version", msg);
			continue;
		}
		switch (h[3]) {
		case VFG_HELLO_REQ: on_hello(id, len); break;
		case VFG_PREPARE: on_prepare(id, len); break;
		case VFG_CONFIG: on_config(id, len); break;
		case VFG_WATCH: on_watch(id, len); break;
		default:
			snprintf(msg, sizeof(msg), "message type 0x%02x is not a request this agent knows", h[3]);
			send_error(id, "unknown-type", msg);
		}
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: vmfork-guest --port PATH | --fd N --root DIR [--systemctl PATH] [--frame-timeout-ms MS] | --version\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *root = NULL, *systemctl = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--version")) {
			printf("vmfork-guest %s protocol %d\n", VFG_AGENT_VERSION, VFG_PROTOCOL_VERSION);
			return 0;
		} else if (!strcmp(a, "--port") && v) {
			g_opt.port = v, i++;
		} else if (!strcmp(a, "--fd") && v) {
			g_opt.fd = atoi(v), i++;
		} else if (!strcmp(a, "--root") && v) {
			root = v, i++;
		} else if (!strcmp(a, "--systemctl") && v) {
			systemctl = v, i++;
		} else if (!strcmp(a, "--frame-timeout-ms") && v && atoi(v) > 0) {
			g_opt.frame_timeout_ms = atoi(v), i++;
		} else {
			return usage();
		}
	}
	if (!g_opt.port == (g_opt.fd < 0))
		return usage();
	/* --fd is the test transport: it must never apply an identity to the machine it runs on */
	if (g_opt.fd >= 0 && !root) {
		fprintf(stderr, "--fd needs --root: tests keep every file the agent writes under a directory of their own\n");
		return 2;
	}
	g_root = root ? root : "";
	/* under --root nothing reaches the real systemd unless a test names a program for it */
	g_opt.systemctl = systemctl ? systemctl : root ? NULL : "/bin/systemctl";

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	sigprocmask(SIG_BLOCK, &set, NULL); /* before O_ASYNC: SIGIO's default action would end the agent */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);

	load_state();
	sshkey_prewarm();
	if (chan_open() < 0)
		return 1;
	fprintf(stderr, "vmfork-guest %s (protocol %d) on %s, state %s\n", VFG_AGENT_VERSION, VFG_PROTOCOL_VERSION,
		g_opt.port ? g_opt.port : "an inherited socket", g_fork.state);
	return serve();
}
