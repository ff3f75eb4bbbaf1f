/* Minimal rtnetlink client: one request at a time, acknowledged or dumped, on a blocking socket. */
#include "nl.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct req {
	struct nlmsghdr h;
	char data[1024];
};

static uint8_t rxbuf[65536];

int nl_open(struct nl *nl, unsigned groups)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = groups };
	/* the kernel answers at once; the timeout only guards against a bug waiting forever */
	struct timeval tv = { .tv_sec = 5 };
	nl->seq = 1;
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl->fd < 0)
		return -errno;
	setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(nl->fd);
		nl->fd = -1;
		return -e;
	}
	return 0;
}

void nl_close(struct nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

static void req_init(struct req *r, int type, int flags, const void *hdr, size_t hdr_len)
{
	memset(r, 0, sizeof(*r));
	r->h.nlmsg_len = NLMSG_LENGTH(hdr_len);
	r->h.nlmsg_type = type;
	r->h.nlmsg_flags = NLM_F_REQUEST | flags;
	memcpy(NLMSG_DATA(&r->h), hdr, hdr_len);
}

static struct rtattr *add_attr(struct req *r, int type, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(r->h.nlmsg_len);
	if (at + RTA_SPACE(len) > sizeof(*r))
		return NULL;
	struct rtattr *rta = (struct rtattr *)((char *)r + at);
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	r->h.nlmsg_len = at + RTA_ALIGN(rta->rta_len);
	return rta;
}

static void nest_end(struct req *r, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)r + r->h.nlmsg_len - (char *)nest);
}

static void parse_attrs(struct rtattr **tb, int max, struct rtattr *rta, int len)
{
	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		int type = rta->rta_type & NLA_TYPE_MASK;
		if (type <= max)
			tb[type] = rta;
	}
}

typedef int (*nl_cb)(struct nlmsghdr *h, void *arg);

/* Sends one request; calls cb for every reply message until the ACK (or NLMSG_DONE of a dump). */
static int talk(struct nl *nl, struct req *r, nl_cb cb, void *arg)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	r->h.nlmsg_seq = ++nl->seq;
	if (sendto(nl->fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl->fd, rxbuf, sizeof(rxbuf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		int len = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)rxbuf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != r->h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error;
			}
			if (cb) {
				int rc = cb(h, arg);
				if (rc < 0)
					return rc;
			}
		}
	}
}

static int link_cb(struct nlmsghdr *h, void *arg)
{
	struct nl_link *out = arg;
	struct ifinfomsg *ifi = NLMSG_DATA(h);
	struct rtattr *tb[IFLA_MAX + 1], *af[AF_MAX + 1], *in6[IFLA_INET6_MAX + 1];
	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	parse_attrs(tb, IFLA_MAX, IFLA_RTA(ifi), (int)IFLA_PAYLOAD(h));
	out->flags = ifi->ifi_flags;
	if (tb[IFLA_ADDRESS]) {
		out->mac_len = (int)RTA_PAYLOAD(tb[IFLA_ADDRESS]);
		if (out->mac_len > (int)sizeof(out->mac))
			out->mac_len = sizeof(out->mac);
		memcpy(out->mac, RTA_DATA(tb[IFLA_ADDRESS]), (size_t)out->mac_len);
	}
	if (tb[IFLA_OPERSTATE])
		out->operstate = *(uint8_t *)RTA_DATA(tb[IFLA_OPERSTATE]);
	if (tb[IFLA_AF_SPEC]) {
		parse_attrs(af, AF_MAX, RTA_DATA(tb[IFLA_AF_SPEC]), (int)RTA_PAYLOAD(tb[IFLA_AF_SPEC]));
		if (af[AF_INET6]) {
			parse_attrs(in6, IFLA_INET6_MAX, RTA_DATA(af[AF_INET6]), (int)RTA_PAYLOAD(af[AF_INET6]));
			if (in6[IFLA_INET6_ADDR_GEN_MODE])
				out->addr_gen_mode = *(uint8_t *)RTA_DATA(in6[IFLA_INET6_ADDR_GEN_MODE]);
		}
	}
	return 0;
}

int nl_link_get(struct nl *nl, int ifindex, struct nl_link *out)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct req r;
	memset(out, 0, sizeof(*out));
	out->operstate = -1;
	out->addr_gen_mode = -1;
	req_init(&r, RTM_GETLINK, NLM_F_ACK, &ifi, sizeof(ifi));
	return talk(nl, &r, link_cb, out);
}

int nl_link_set_up(struct nl *nl, int ifindex, int up)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex, .ifi_flags = up ? IFF_UP : 0, .ifi_change = IFF_UP };
	struct req r;
	req_init(&r, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
	return talk(nl, &r, NULL, NULL);
}

int nl_link_set_mac(struct nl *nl, int ifindex, const uint8_t mac[6])
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct req r;
	req_init(&r, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
	add_attr(&r, IFLA_ADDRESS, mac, 6);
	return talk(nl, &r, NULL, NULL);
}

int nl_link_set_addr_gen_mode(struct nl *nl, int ifindex, uint8_t mode)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct req r;
	req_init(&r, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
	struct rtattr *spec = add_attr(&r, IFLA_AF_SPEC | NLA_F_NESTED, NULL, 0);
	struct rtattr *in6 = add_attr(&r, AF_INET6 | NLA_F_NESTED, NULL, 0);
	add_attr(&r, IFLA_INET6_ADDR_GEN_MODE, &mode, 1);
	nest_end(&r, in6);
	nest_end(&r, spec);
	return talk(nl, &r, NULL, NULL);
}

struct list_arg {
	void *out;
	int max, count, ifindex;
};

static int addr_cb(struct nlmsghdr *h, void *arg)
{
	struct list_arg *a = arg;
	struct ifaddrmsg *ifa = NLMSG_DATA(h);
	struct rtattr *tb[IFA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWADDR || (a->ifindex && (int)ifa->ifa_index != a->ifindex) || a->count >= a->max)
		return 0;
	parse_attrs(tb, IFA_MAX, IFA_RTA(ifa), (int)IFA_PAYLOAD(h));
	struct rtattr *addr = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!addr || RTA_PAYLOAD(addr) > 16)
		return 0;
	struct nl_addr *o = (struct nl_addr *)a->out + a->count++;
	memset(o, 0, sizeof(*o));
	o->family = ifa->ifa_family;
	o->ifindex = (int)ifa->ifa_index;
	o->prefix = ifa->ifa_prefixlen;
	o->scope = ifa->ifa_scope;
	o->flags = tb[IFA_FLAGS] ? *(uint32_t *)RTA_DATA(tb[IFA_FLAGS]) : ifa->ifa_flags;
	memcpy(o->addr, RTA_DATA(addr), RTA_PAYLOAD(addr));
	return 0;
}

/* A dump request; cb keeps up to max entries for ifindex in out. Returns the count or -errno. */
static int dump(struct nl *nl, int type, const void *hdr, size_t hdr_len, nl_cb cb, void *out, int max, int ifindex)
{
	struct list_arg a = { out, max, 0, ifindex };
	struct req r;
	req_init(&r, type, NLM_F_DUMP, hdr, hdr_len);
	int rc = talk(nl, &r, cb, &a);
	return rc < 0 ? rc : a.count;
}

int nl_addr_list(struct nl *nl, int family, int ifindex, struct nl_addr *out, int max)
{
	struct ifaddrmsg ifa = { .ifa_family = (uint8_t)family };
	return dump(nl, RTM_GETADDR, &ifa, sizeof(ifa), addr_cb, out, max, ifindex);
}

int nl_addr_del(struct nl *nl, const struct nl_addr *x)
{
	struct ifaddrmsg ifa = { .ifa_family = (uint8_t)x->family, .ifa_prefixlen = (uint8_t)x->prefix, .ifa_index = (uint32_t)x->ifindex };
	struct req r;
	req_init(&r, RTM_DELADDR, NLM_F_ACK, &ifa, sizeof(ifa));
	add_attr(&r, x->family == AF_INET ? IFA_LOCAL : IFA_ADDRESS, x->addr, x->family == AF_INET ? 4 : 16);
	return talk(nl, &r, NULL, NULL);
}

int nl_addr_add4(struct nl *nl, int ifindex, const uint8_t addr[4], int prefix)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (uint8_t)prefix, .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (uint32_t)ifindex };
	uint32_t host = prefix >= 32 ? 0 : 0xffffffffu >> prefix;
	uint8_t brd[4];
	for (int i = 0; i < 4; i++)
		brd[i] = addr[i] | (uint8_t)(host >> (24 - 8 * i));
	struct req r;
	req_init(&r, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	add_attr(&r, IFA_LOCAL, addr, 4);
	add_attr(&r, IFA_ADDRESS, addr, 4);
	add_attr(&r, IFA_BROADCAST, brd, 4);
	return talk(nl, &r, NULL, NULL);
}

static int route_cb(struct nlmsghdr *h, void *arg)
{
	struct list_arg *a = arg;
	struct rtmsg *rtm = NLMSG_DATA(h);
	struct rtattr *tb[RTA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWROUTE || a->count >= a->max)
		return 0;
	parse_attrs(tb, RTA_MAX, RTM_RTA(rtm), (int)RTM_PAYLOAD(h));
	int table = tb[RTA_TABLE] ? (int)*(uint32_t *)RTA_DATA(tb[RTA_TABLE]) : rtm->rtm_table;
	int oif = tb[RTA_OIF] ? (int)*(uint32_t *)RTA_DATA(tb[RTA_OIF]) : 0;
	if (table != RT_TABLE_MAIN || oif != a->ifindex)
		return 0;
	struct nl_route *o = (struct nl_route *)a->out + a->count++;
	memset(o, 0, sizeof(*o));
	o->family = rtm->rtm_family;
	o->table = table;
	o->protocol = rtm->rtm_protocol;
	o->scope = rtm->rtm_scope;
	o->type = rtm->rtm_type;
	o->dst_len = rtm->rtm_dst_len;
	o->oif = oif;
	if (tb[RTA_DST] && RTA_PAYLOAD(tb[RTA_DST]) <= 16)
		memcpy(o->dst, RTA_DATA(tb[RTA_DST]), RTA_PAYLOAD(tb[RTA_DST]));
	if (tb[RTA_GATEWAY] && RTA_PAYLOAD(tb[RTA_GATEWAY]) <= 16) {
		memcpy(o->gw, RTA_DATA(tb[RTA_GATEWAY]), RTA_PAYLOAD(tb[RTA_GATEWAY]));
		o->has_gw = 1;
	}
	if (tb[RTA_PRIORITY]) {
		o->priority = *(uint32_t *)RTA_DATA(tb[RTA_PRIORITY]);
		o->has_priority = 1;
	}
	return 0;
}

int nl_route_list4(struct nl *nl, int oif, struct nl_route *out, int max)
{
	struct rtmsg rtm = { .rtm_family = AF_INET };
	return dump(nl, RTM_GETROUTE, &rtm, sizeof(rtm), route_cb, out, max, oif);
}

int nl_route_del(struct nl *nl, const struct nl_route *x)
{
	struct rtmsg rtm = {
		.rtm_family = (uint8_t)x->family,
		.rtm_dst_len = (uint8_t)x->dst_len,
		.rtm_table = x->table < 256 ? (uint8_t)x->table : RT_TABLE_UNSPEC,
		.rtm_protocol = (uint8_t)x->protocol,
		.rtm_scope = (uint8_t)x->scope,
		.rtm_type = (uint8_t)x->type,
	};
	uint32_t table = (uint32_t)x->table, oif = (uint32_t)x->oif;
	size_t alen = x->family == AF_INET ? 4 : 16;
	struct req r;
	req_init(&r, RTM_DELROUTE, NLM_F_ACK, &rtm, sizeof(rtm));
	add_attr(&r, RTA_TABLE, &table, 4);
	if (x->dst_len)
		add_attr(&r, RTA_DST, x->dst, alen);
	add_attr(&r, RTA_OIF, &oif, 4);
	if (x->has_gw)
		add_attr(&r, RTA_GATEWAY, x->gw, alen);
	if (x->has_priority)
		add_attr(&r, RTA_PRIORITY, &x->priority, 4);
	return talk(nl, &r, NULL, NULL);
}

int nl_route_replace_default4(struct nl *nl, int oif, const uint8_t gw[4])
{
	struct rtmsg rtm = {
		.rtm_family = AF_INET,
		.rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = RTPROT_BOOT, /* what `ip route` marks a route an administrator added */
		.rtm_scope = RT_SCOPE_UNIVERSE,
		.rtm_type = RTN_UNICAST,
	};
	uint32_t o = (uint32_t)oif;
	struct req r;
	req_init(&r, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, &rtm, sizeof(rtm));
	add_attr(&r, RTA_GATEWAY, gw, 4);
	add_attr(&r, RTA_OIF, &o, 4);
	return talk(nl, &r, NULL, NULL);
}

static int neigh_cb(struct nlmsghdr *h, void *arg)
{
	struct list_arg *a = arg;
	struct ndmsg *nd = NLMSG_DATA(h);
	struct rtattr *tb[NDA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWNEIGH || (a->ifindex && nd->ndm_ifindex != a->ifindex) || a->count >= a->max)
		return 0;
	if (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6)
		return 0;
	parse_attrs(tb, NDA_MAX, (struct rtattr *)((char *)nd + NLMSG_ALIGN(sizeof(*nd))), (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*nd))));
	if (!tb[NDA_DST] || RTA_PAYLOAD(tb[NDA_DST]) > 16)
		return 0;
	struct nl_neigh *o = (struct nl_neigh *)a->out + a->count++;
	memset(o, 0, sizeof(*o));
	o->family = nd->ndm_family;
	o->ifindex = nd->ndm_ifindex;
	o->state = nd->ndm_state;
	o->flags = nd->ndm_flags;
	o->type = nd->ndm_type;
	memcpy(o->dst, RTA_DATA(tb[NDA_DST]), RTA_PAYLOAD(tb[NDA_DST]));
	if (tb[NDA_LLADDR] && RTA_PAYLOAD(tb[NDA_LLADDR]) == 6) {
		memcpy(o->ll, RTA_DATA(tb[NDA_LLADDR]), 6);
		o->has_ll = 1;
	}
	return 0;
}

int nl_neigh_list(struct nl *nl, int ifindex, struct nl_neigh *out, int max)
{
	struct ndmsg nd = { .ndm_family = AF_UNSPEC };
	return dump(nl, RTM_GETNEIGH, &nd, sizeof(nd), neigh_cb, out, max, ifindex);
}

int nl_neigh_del(struct nl *nl, const struct nl_neigh *x)
{
	struct ndmsg nd = { .ndm_family = (uint8_t)x->family, .ndm_ifindex = x->ifindex, .ndm_state = x->state, .ndm_flags = x->flags, .ndm_type = x->type };
	struct req r;
	req_init(&r, RTM_DELNEIGH, NLM_F_ACK, &nd, sizeof(nd));
	add_attr(&r, NDA_DST, x->dst, x->family == AF_INET ? 4 : 16);
	return talk(nl, &r, NULL, NULL);
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int has_link_local(struct nl *req, int ifindex)
{
	static struct nl_addr found[NL_MAX_ITEMS];
	int n = nl_addr_list(req, AF_INET6, ifindex, found, NL_MAX_ITEMS);
	for (int i = 0; i < n; i++)
		if (found[i].scope == RT_SCOPE_LINK)
			return 1;
	return 0;
}

int nl_wait_link_local(struct nl *req, struct nl *events, int ifindex, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		if (has_link_local(req, ifindex))
			return 0;
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		/* woken by any link or address event (carrier coming back); 50 ms caps what a missed event can cost */
		struct pollfd p = { .fd = events->fd, .events = POLLIN };
		if (poll(&p, 1, left < 50 ? (int)left : 50) > 0)
			while (recv(events->fd, rxbuf, sizeof(rxbuf), MSG_DONTWAIT) > 0)
				;
	}
}
