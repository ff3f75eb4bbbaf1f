/**
 * The host side of vmfork-guest, the resident guest agent (docs/guest-agent.md): its versioned protocol
 * (guest/PROTOCOL.md), the frame codec, and the client that talks to it over its own virtio-serial port.
 */
export { VmforkAgentClient, type AgentCallOptions, type AgentClientOptions, type PrepareResult, type WaitAgentOptions } from './client.js';
export { decodeFields, encodeFields, encodeFrame, FrameDecoder, type Field, type Frame } from './codec.js';
export { openSessions, watchSessions, type SessionWatch, type SessionWatchOptions } from './sessions.js';
export { agentStepOutput, GUEST_FACTS_BLOCK, stepFacts, type AgentStepOutput } from './facts.js';
export {
  decodeAgentMessage,
  encodeHostMessage,
  type AgentErrorMessage,
  type AgentForkMe,
  type AgentForkState,
  type AgentHello,
  type AgentKicked,
  type AgentMessage,
  type AgentPrepared,
  type AgentReport,
  type AgentSession,
  type AgentSessions,
  type AgentStep,
  type AgentStepFact,
  type ConfigRequest,
  type HelloRequest,
  type HostMessage,
  type PrepareRequest,
  type WatchRequest,
} from './messages.js';
export { AGENT_ERROR_CODES, AGENT_PORT_NAME, HEADER_BYTES, MAX_PAYLOAD_BYTES, MessageType, NONCE_BYTES, PROTOCOL_VERSION, SESSIONS_CAPABILITY, Tag } from './protocol.js';
