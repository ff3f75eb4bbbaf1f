/**
 * Networks vmfork owns: a bridge in a network namespace of its own per network, a tap and an IPv4 lease per VM.
 * Nothing on them can reach outside their namespace (docs/networks.md).
 */
export { attachVm, detachVm, ensureNetworkNamed, plugLease, type AttachOptions } from './attach.js';
export { formatIpv4, parseCidr, parseIpv4, type Cidr } from './cidr.js';
export { listNetworks, showNetwork, type NetworkDetail, type NetworkSummary } from './describe.js';
export { execInNetns, ip, listNamespaces, requireRoot } from './ip.js';
export { allocateLease, allocateLeaseIn, freeCount, leaseOfVm, leasesFor, releaseLease, type AllocateLeaseOptions, type Lease } from './leases.js';
export { isLocallyAdministeredUnicast, isUnicastMac, normalizeMac, randomLocalMac } from './mac.js';
export { baseNetnsOf, BRIDGE_NAME, dataDirNetnsPrefix, instanceNetns, DEFAULT_NETWORK, NETNS_PREFIX_SETTING, netnsPrefixOverride } from './names.js';
export { deleteNamespace, inspectNamespace } from './netns.js';
export { createNetwork, deleteNetwork, ensureDefaultNetwork, ensureNetwork, healNetwork, instanceSpec, type CreatedNetwork, type CreateNetworkOptions } from './networks.js';
export { createTap, deleteTap } from './tap.js';
export { syncHostInstances, type InstanceSync } from './instances.js';
export { VXLAN_NAME, VXLAN_PORT } from './vxlan.js';
export { scanSshHostKeyLines } from './ssh-scan.js';
