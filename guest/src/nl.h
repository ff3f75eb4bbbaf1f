/*
 * The rtnetlink requests the network steps need (what `ip link/addr/route/neigh` would send), without
 * running `ip`: under TCG every exec of a program in a fresh child costs tens of milliseconds.
 */
#ifndef VFG_NL_H
#define VFG_NL_H

#include <stdint.h>

struct nl {
	int fd;
	uint32_t seq;
};

struct nl_link {
	uint8_t mac[32];
	int mac_len;
	unsigned flags;
	int operstate;     /* IF_OPER_*; -1 unknown */
	int addr_gen_mode; /* IN6_ADDR_GEN_MODE_*; -1 when the kernel did not say (no IPv6) */
};

struct nl_addr {
	int family, ifindex, prefix, scope;
	uint32_t flags;
	uint8_t addr[16];
};

struct nl_route {
	int family, table, protocol, scope, type, dst_len, oif, has_gw, has_priority;
	uint32_t priority;
	uint8_t dst[16], gw[16];
};

struct nl_neigh {
	int family, ifindex, has_ll;
	uint16_t state;
	uint8_t flags, type;
	uint8_t dst[16], ll[6];
};

#define NL_MAX_ITEMS 128

/* groups: RTMGRP_* to listen to (0 for a request socket). Returns 0 or -errno. */
int nl_open(struct nl *nl, unsigned groups);
void nl_close(struct nl *nl);

int nl_link_get(struct nl *nl, int ifindex, struct nl_link *out);
int nl_link_set_up(struct nl *nl, int ifindex, int up);
int nl_link_set_mac(struct nl *nl, int ifindex, const uint8_t mac[6]);
int nl_link_set_addr_gen_mode(struct nl *nl, int ifindex, uint8_t mode);

/* Lists up to max entries (family AF_UNSPEC for all; ifindex 0 for every interface); returns the count or -errno. */
int nl_addr_list(struct nl *nl, int family, int ifindex, struct nl_addr *out, int max);
int nl_addr_del(struct nl *nl, const struct nl_addr *a);
int nl_addr_add4(struct nl *nl, int ifindex, const uint8_t addr[4], int prefix);

/* IPv4 routes of the main table leaving through ifindex. */
int nl_route_list4(struct nl *nl, int oif, struct nl_route *out, int max);
int nl_route_del(struct nl *nl, const struct nl_route *r);
int nl_route_replace_default4(struct nl *nl, int oif, const uint8_t gw[4]);

int nl_neigh_list(struct nl *nl, int ifindex, struct nl_neigh *out, int max);
int nl_neigh_del(struct nl *nl, const struct nl_neigh *n);

/*
 * Waits up to timeout_ms until ifindex has an IPv6 link-local address, tentative or not (the kernel announces a
 * tentative one only once duplicate address detection is over, so this looks, woken by events on a socket opened
 * with RTMGRP_LINK | RTMGRP_IPV6_IFADDR: carrier returning is what adds the address).
 */
int nl_wait_link_local(struct nl *req, struct nl *events, int ifindex, int timeout_ms);

#endif
