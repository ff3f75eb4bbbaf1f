import { addressesIn, expectFact, fact, factList, failed, passed } from './facts.js';
import { eui64LinkLocal, parseIfInet6, sameIpv6 } from './ipv6.js';
import { VmforkError } from '../errors.js';
import { shQuote } from '../util/index.js';
import type { IdentityStep, NormalizedIdentity } from './types.js';

/**
 * `ip -batch` from a quoted here-document: several ip commands for one exec (each exec costs tens of ms under
 * TCG). The quoted delimiter means the shell expands nothing inside; the values were validated to hold only
 * [0-9a-zA-Z_.:/-], which ip's batch parser takes as plain words. `options` go before -batch (e.g. `-4 -o `).
 */
export function ipBatch(options: string, commands: readonly string[]): string {
  for (const c of commands) if (!/^[0-9a-zA-Z_.:/+ -]+$/.test(c)) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `unsafe ip batch command: ${JSON.stringify(c)}`);
  return [`ip ${options}-batch - <<'VMFORK_IP'`, ...commands, 'VMFORK_IP'].join('\n');
}

const dev = (id: NormalizedIdentity): string => `dev=${shQuote(id.interface)}`;

/**
 * The template's device state carries its MAC into every child, so the guest must be told the new one (QEMU's
 * command-line MAC alone does not change what the guest driver uses). The link goes down first: that drops the
 * inherited IPv6 addresses and neighbour entries, and the next step brings it back up.
 */
export const macStep: IdentityStep = {
  name: 'mac',
  script: (id) =>
    [
      dev(id),
      ipBatch('', [`link set dev ${id.interface} down`, `link set dev ${id.interface} address ${id.mac}`]),
      'read_first v "/sys/class/net/$dev/address"; fact address "$v"',
    ].join('\n'),
  verify: (facts, ctx) => expectFact(facts, 'address', ctx.identity.mac, 'the guest MAC') ?? passed(),
};

/**
 * addr_gen_mode 0 (EUI-64) makes the new link-local a function of the new MAC, flushing removes any inherited one
 * (kept across down/up when keep_addr_on_down is set), and bringing the link up makes the kernel generate it. It
 * appears once the link has carrier, so the step waits up to ~1 s for it. The kernel's own list,
 * /proc/net/if_inet6, is read with builtins (`ip -6 addr show` would be one more exec per look).
 */
export const ipv6LinkLocalStep: IdentityStep = {
  name: 'ipv6-link-local',
  script: (id) =>
    [
      dev(id),
      'c="/proc/sys/net/ipv6/conf/$dev"',
      'dis=1',
      'if [ -e "$c/disable_ipv6" ]; then read_first dis "$c/disable_ipv6"; fi',
      'if [ "$dis" = 0 ]; then',
      '  echo 0 > "$c/addr_gen_mode"',
      ipBatch('-6 ', [`addr flush dev ${id.interface} scope link`, `link set dev ${id.interface} up`]),
      'else',
      `  ${ipBatch('', [`link set dev ${id.interface} up`])}`,
      'fi',
      // scope 20 = link; fields: address, ifindex, prefix length, scope, flags, device (all hex but the device)
      'lls() { ll=; if [ -r /proc/net/if_inet6 ]; then while read -r a _i p s f d; do if [ "$d" = "$dev" ] && [ "$s" = 20 ]; then ll="$ll$a $p $f$NL"; fi; done < /proc/net/if_inet6; fi; }',
      'lls; i=0',
      'while [ "$dis" = 0 ] && [ -z "$ll" ] && [ "$i" -lt 40 ]; do sleep 0.025; lls; i=$((i + 1)); done',
      'if [ "$dis" = 0 ]; then read_first v "$c/addr_gen_mode"; fact addr_gen_mode "$v"; fi',
      'fact disabled "$dis"',
      'read_first v "/sys/class/net/$dev/operstate"; fact operstate "$v"',
      'fact_lines ll "$ll"',
    ].join('\n'),
  verify(facts, ctx) {
    if (fact(facts, 'disabled') === '1') return passed('IPv6 is disabled on the interface: no link-local address');
    if (fact(facts, 'addr_gen_mode') !== '0') return failed(`addr_gen_mode is ${JSON.stringify(fact(facts, 'addr_gen_mode'))}, expected 0 (eui64)`);
    const want = eui64LinkLocal(ctx.identity.mac);
    const got = parseIfInet6(factList(facts, 'll'));
    if (got.length !== 1 || !got[0] || !sameIpv6(got[0].address, want)) {
      return failed(`link-local addresses are [${got.map((a) => a.address).join(', ')}] (link ${fact(facts, 'operstate') ?? '?'}), expected ${want}`);
    }
    if (got[0].dadFailed) return failed(`${want} failed duplicate address detection`);
    return passed(`${want}${got[0].tentative ? ' (duplicate address detection in progress)' : ''}`);
  },
};

/**
 * Declarative: afterwards the interface has exactly the requested global IPv4 address and default route, or none
 * at all when the identity has no ipv4 — a child never keeps an address inherited from its template. One ip
 * batch changes and then shows the result.
 */
export const ipv4Step: IdentityStep = {
  name: 'ipv4',
  script: (id) => {
    const d = id.interface;
    const change = [`addr flush dev ${d} scope global`, `route flush dev ${d}`];
    if (id.ipv4) change.push(`addr add ${id.ipv4.address}/${id.ipv4.prefix} broadcast + dev ${d}`, `route replace default via ${id.ipv4.gateway} dev ${d}`);
    return [`out=$(${ipBatch('-4 -o ', [...change, `addr show dev ${d} scope global`, `route show default dev ${d}`])}`, ')', 'fact_lines out "$out"'].join('\n');
  },
  verify(facts, ctx) {
    const out = factList(facts, 'out');
    const addrs = addressesIn(out, 'inet').map((a) => `${a.address}/${a.prefix}`);
    const gateways = out.filter((l) => l.startsWith('default')).map((l) => /\bvia (\S+)/.exec(l)?.[1] ?? l.trim());
    const want = ctx.identity.ipv4;
    if (!want) {
      if (addrs.length > 0 || gateways.length > 0) return failed(`no IPv4 was requested but the guest has [${addrs.join(', ')}] via [${gateways.join(', ')}]`);
      return passed('no IPv4 requested: none configured');
    }
    const cidr = `${want.address}/${want.prefix}`;
    if (addrs.length !== 1 || addrs[0] !== cidr) return failed(`global IPv4 addresses are [${addrs.join(', ')}], expected ${cidr}`);
    if (gateways.length !== 1 || gateways[0] !== want.gateway) return failed(`default routes are via [${gateways.join(', ')}], expected ${want.gateway}`);
    return passed(`${cidr} via ${want.gateway}`);
  },
};

/** Lease files of every DHCP client Debian ships; a forked child must not renew its template's lease. */
export const LEASE_GLOBS = [
  '/var/lib/dhcp/*.leases',
  '/var/lib/dhcp/*.lease',
  '/var/lib/dhclient/*.lease*',
  '/var/lib/dhcpcd/*.lease*',
  '/run/systemd/netif/leases/*',
  '/var/lib/NetworkManager/*.lease',
] as const;

/** Neighbour (ARP/NDP) entries learned by the template and DHCP leases: both name the template, not the child. */
export const neighboursLeasesStep: IdentityStep = {
  name: 'neighbours-leases',
  script: (id) =>
    [
      `out=$(${ipBatch('', [`neigh flush dev ${id.interface}`, `neigh show dev ${id.interface}`])}`,
      ')',
      'fact_lines neighbour "$out"',
      'left=0',
      `for f in ${LEASE_GLOBS.join(' ')}; do`,
      '  if [ -e "$f" ]; then rm -f "$f"; fact removed "$f"; fi',
      '  if [ -e "$f" ]; then left=$((left + 1)); fi',
      'done',
      'fact leases_left "$left"',
    ].join('\n'),
  verify(facts) {
    const left = fact(facts, 'leases_left');
    if (left !== '0') return failed(`${String(left)} DHCP lease file(s) could not be removed`);
    const removed = factList(facts, 'removed').length;
    return passed(`${removed} lease file(s) removed; ${factList(facts, 'neighbour').length} neighbour entries after the flush`);
  },
};
