/**
 * A host agent: registers its host in the shared store, holds its name, heartbeats, finds lost hosts, and runs the
 * steps bound to its host, taken from its queue (docs/hosts.md, docs/jobs.md). remote.ts is the other end: a step
 * sent to a host's agent from anywhere in the fleet.
 */
export { startHostAgent, type HostAgentDeps, type RunningHostAgent } from './agent.js';
export { HOST_AGENT_PROTOCOL, parseHostAgentOptions, type HostAgentOptions, type RawHostAgentOptions } from './options.js';
export { collectOnHostFor, forkOnHost, listHostJobs, remoteHostOf, remoteHostOfReplica, remoteHostOfTemplate, sendHostJob } from './remote.js';
