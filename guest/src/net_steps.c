/*
 * The network identity steps over rtnetlink, in the order the identity pipeline runs them: MAC (link down first),
 * IPv6 link-local (EUI-64 from the new MAC, link up), IPv4 (declarative: exactly the requested address and
 * default route, or none), then neighbours and DHCP leases. Facts use the formats the shell steps print
 * (/proc/net/if_inet6 lines, `ip -o` address lines) so the host verifies both paths the same way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "files.h"
#include "nl.h"
#include "report.h"

/*
 * How long the link-local may take to appear. With carrier kept across down/up (virtio-net) the kernel adds it
 * within the link-up request; a device that drops carrier when down (veth, in the namespace tests) gets it back
 * through linkwatch, which runs at most once a second.
 */
#define LINK_LOCAL_WAIT_MS 1500

/* IN6_ADDR_GEN_MODE_EUI64 from linux/if_link.h (not included here: it clashes with net/if.h) */
#define ADDR_GEN_EUI64 0

const char *const LEASE_GLOBS[] = {
	"/var/lib/dhcp/*.leases", "/var/lib/dhcp/*.lease", "/var/lib/dhclient/*.lease*", "/var/lib/dhcpcd/*.lease*",
	"/run/systemd/netif/leases/*", "/var/lib/NetworkManager/*.lease", NULL,
};

static struct nl_addr addrs[NL_MAX_ITEMS];
static struct nl_route routes[NL_MAX_ITEMS];
static struct nl_neigh neighs[NL_MAX_ITEMS];

/* Opens the netlink socket and finds the interface; a failure fails the step. */
static int begin(struct step *s, struct nl *nl, const char *ifname)
{
	int rc = nl_open(nl, 0);
	if (rc < 0) {
		step_fail(s, "netlink: %s", strerror(-rc));
		return 0;
	}
	int idx = (int)if_nametoindex(ifname);
	if (!idx) {
		step_fail(s, "no interface %s: %s", ifname, strerror(errno));
		nl_close(nl);
	}
	return idx;
}

static void mac_text(const uint8_t *m, int n, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	for (int i = 0; i < n && o + 3 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, i ? ":%02x" : "%02x", m[i]);
}

void step_mac(struct wbuf *w, const struct config_req *c)
{
	struct step s;
	struct nl nl;
	struct nl_link link;
	char text[100];
	int rc;
	step_begin(&s, w, "mac");
	int idx = begin(&s, &nl, c->ifname);
	if (idx) {
		/* the MAC changes while the link is down: that also drops inherited IPv6 addresses and neighbours */
		if ((rc = nl_link_set_up(&nl, idx, 0)) < 0)
			step_fail(&s, "link %s down: %s", c->ifname, strerror(-rc));
		else if ((rc = nl_link_set_mac(&nl, idx, c->mac)) < 0)
			step_fail(&s, "link %s address %s: %s", c->ifname, c->mac_text, strerror(-rc));
		if (nl_link_get(&nl, idx, &link) == 0) {
			mac_text(link.mac, link.mac_len, text, sizeof(text));
			fact(&s, "address", "%s", text);
		}
		nl_close(&nl);
	}
	step_end(&s);
}

static const char *operstate_name(int st)
{
	static const char *const names[] = { "unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up" };
	return st >= 0 && st <= 6 ? names[st] : "unknown";
}

static void link_local_facts(struct step *s, struct nl *nl, int idx)
{
	int n = nl_addr_list(nl, AF_INET6, idx, addrs, NL_MAX_ITEMS);
	for (int i = 0; i < n; i++) {
		if (addrs[i].scope != RT_SCOPE_LINK)
			continue;
		char hex[33];
		for (int j = 0; j < 16; j++)
			snprintf(hex + 2 * j, 3, "%02x", addrs[i].addr[j]);
		/* the /proc/net/if_inet6 shape: address, prefix length, flags (hex) */
		fact(s, "ll", "%s %02x %02x", hex, (unsigned)addrs[i].prefix, (unsigned)addrs[i].flags);
	}
}

/*
 * addr_gen_mode EUI-64 makes the new link-local a function of the new MAC; inherited link-locals are deleted
 * (they survive down/up with keep_addr_on_down); bringing the link up makes the kernel generate the new one,
 * which needs carrier: the step waits for the kernel's RTM_NEWADDR (LINK_LOCAL_WAIT_MS at most).
 */
void step_ipv6_link_local(struct wbuf *w, const struct config_req *c)
{
	struct step s;
	struct nl nl, events;
	struct nl_link link;
	char path[128], dis[16] = "1";
	int rc;
	step_begin(&s, w, "ipv6-link-local");
	int idx = begin(&s, &nl, c->ifname);
	if (!idx) {
		step_end(&s);
		return;
	}
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", c->ifname);
	if (read_first(path, dis, sizeof(dis)) < 0 || !dis[0])
		snprintf(dis, sizeof(dis), "1");
	int v6 = strcmp(dis, "0") == 0;
	int listening = v6 && nl_open(&events, RTMGRP_LINK | RTMGRP_IPV6_IFADDR) == 0;
	if (v6) {
		if ((rc = nl_link_set_addr_gen_mode(&nl, idx, ADDR_GEN_EUI64)) < 0)
			step_fail(&s, "addr_gen_mode eui64: %s", strerror(-rc));
		int n = nl_addr_list(&nl, AF_INET6, idx, addrs, NL_MAX_ITEMS);
		for (int i = 0; i < n && !s.failed; i++)
			if (addrs[i].scope == RT_SCOPE_LINK && (rc = nl_addr_del(&nl, &addrs[i])) < 0 && rc != -EADDRNOTAVAIL)
				step_fail(&s, "flush link-local: %s", strerror(-rc));
	}
	if (!s.failed && (rc = nl_link_set_up(&nl, idx, 1)) < 0)
		step_fail(&s, "link %s up: %s", c->ifname, strerror(-rc));
	if (!s.failed && listening)
		nl_wait_link_local(&nl, &events, idx, LINK_LOCAL_WAIT_MS); /* the facts below say whether it came */
	if (listening)
		nl_close(&events);
	if (v6 && nl_link_get(&nl, idx, &link) == 0)
		fact(&s, "addr_gen_mode", "%d", link.addr_gen_mode);
	fact(&s, "disabled", "%s", dis);
	if (nl_link_get(&nl, idx, &link) == 0)
		fact(&s, "operstate", "%s", operstate_name(link.operstate));
	link_local_facts(&s, &nl, idx);
	nl_close(&nl);
	step_end(&s);
}

/* Flushes global IPv4 addresses and the interface's main-table routes, then adds what CONFIG asks for. */
void step_ipv4(struct wbuf *w, const struct config_req *c)
{
	struct step s;
	struct nl nl;
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	int rc, n;
	step_begin(&s, w, "ipv4");
	int idx = begin(&s, &nl, c->ifname);
	if (!idx) {
		step_end(&s);
		return;
	}
	n = nl_addr_list(&nl, AF_INET, idx, addrs, NL_MAX_ITEMS);
	for (int i = 0; i < n && !s.failed; i++)
		if (addrs[i].scope == RT_SCOPE_UNIVERSE && (rc = nl_addr_del(&nl, &addrs[i])) < 0 && rc != -EADDRNOTAVAIL)
			step_fail(&s, "flush addresses: %s", strerror(-rc));
	/* routes listed after the addresses went: their prefix routes went with them */
	n = nl_route_list4(&nl, idx, routes, NL_MAX_ITEMS);
	for (int i = 0; i < n && !s.failed; i++)
		if ((rc = nl_route_del(&nl, &routes[i])) < 0 && rc != -ESRCH)
			step_fail(&s, "flush routes: %s", strerror(-rc));
	if (!s.failed && c->has_ipv4) {
		if ((rc = nl_addr_add4(&nl, idx, c->ipv4, c->prefix)) < 0)
			step_fail(&s, "add %s/%d: %s", c->ipv4_text, c->prefix, strerror(-rc));
		else if ((rc = nl_route_replace_default4(&nl, idx, c->gateway)) < 0)
			step_fail(&s, "default via %s: %s", c->gateway_text, strerror(-rc));
	}
	/* what `ip -4 -o addr show scope global` and `ip route show default` print */
	n = nl_addr_list(&nl, AF_INET, idx, addrs, NL_MAX_ITEMS);
	for (int i = 0; i < n; i++) {
		if (addrs[i].scope != RT_SCOPE_UNIVERSE)
			continue;
		uint8_t brd[4];
		uint32_t host = addrs[i].prefix >= 32 ? 0 : 0xffffffffu >> addrs[i].prefix;
		for (int j = 0; j < 4; j++)
			brd[j] = addrs[i].addr[j] | (uint8_t)(host >> (24 - 8 * j));
		inet_ntop(AF_INET, addrs[i].addr, a, sizeof(a));
		inet_ntop(AF_INET, brd, b, sizeof(b));
		fact(&s, "out", "%d: %s    inet %s/%d brd %s scope global %s", idx, c->ifname, a, addrs[i].prefix, b, c->ifname);
	}
	n = nl_route_list4(&nl, idx, routes, NL_MAX_ITEMS);
	for (int i = 0; i < n; i++) {
		if (routes[i].dst_len != 0 || !routes[i].has_gw)
			continue;
		inet_ntop(AF_INET, routes[i].gw, a, sizeof(a));
		fact(&s, "out", "default via %s dev %s", a, c->ifname);
	}
	nl_close(&nl);
	step_end(&s);
}

/* Deletes the neighbour entries ip's `neigh flush` would (all but permanent and noarp ones) on one interface or all. */
int flush_neighbours(struct nl *nl, int ifindex)
{
	int n = nl_neigh_list(nl, ifindex, neighs, NL_MAX_ITEMS), rc;
	for (int i = 0; i < n; i++)
		if (!(neighs[i].state & (NUD_PERMANENT | NUD_NOARP)) && (rc = nl_neigh_del(nl, &neighs[i])) < 0 && rc != -ENOENT)
			return rc;
	return n < 0 ? n : 0;
}

int remove_leases(struct step *s)
{
	return remove_globs(s, LEASE_GLOBS);
}

void step_neighbours_leases(struct wbuf *w, const struct config_req *c)
{
	struct step s;
	struct nl nl;
	char a[INET6_ADDRSTRLEN], ll[32];
	int rc;
	step_begin(&s, w, "neighbours-leases");
	int idx = begin(&s, &nl, c->ifname);
	if (idx) {
		if ((rc = flush_neighbours(&nl, idx)) < 0)
			step_fail(&s, "neigh flush: %s", strerror(-rc));
		int n = nl_neigh_list(&nl, idx, neighs, NL_MAX_ITEMS);
		for (int i = 0; i < n; i++) {
			inet_ntop(neighs[i].family, neighs[i].dst, a, sizeof(a));
			mac_text(neighs[i].ll, neighs[i].has_ll ? 6 : 0, ll, sizeof(ll));
			fact(&s, "neighbour", "%s dev %s lladdr %s state 0x%x", a, c->ifname, ll[0] ? ll : "-", neighs[i].state);
		}
		nl_close(&nl);
	}
	fact(&s, "leases_left", "%d", remove_leases(&s));
	step_end(&s);
}
