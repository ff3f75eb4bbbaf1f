/** A host agent: registers its host in the shared store, holds its name, heartbeats, finds lost hosts (docs/hosts.md). */
export { startHostAgent, type HostAgentDeps, type RunningHostAgent } from './agent.js';
export { HOST_AGENT_PROTOCOL, parseHostAgentOptions, type HostAgentOptions, type RawHostAgentOptions } from './options.js';
