/**
 * Constants of the vmfork-guest protocol (guest/PROTOCOL.md): the C agent's guest/src/proto.h says the same, and
 * the codec tests run both against each other.
 */

/** Name of the agent's own virtio-serial port (qemu-ga has org.qemu.guest_agent.0). */
export const AGENT_PORT_NAME = 'org.vmfork.guest.0';
/** The protocol version this host speaks; a frame carries its version in byte 2 of the header. */
export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 12;
/** Hard limit on a payload in either direction: a frame announcing more is refused, never buffered. */
export const MAX_PAYLOAD_BYTES = 65_536;
/** Bytes of the nonce the agent draws when it asks to be forked. */
export const NONCE_BYTES = 16;

export const MessageType = {
  HELLO: 0x01,
  PREPARED: 0x02,
  FORK_ME: 0x03,
  REPORT: 0x04,
  KICKED: 0x05,
  SESSIONS: 0x06,
  ERROR: 0x7f,
  HELLO_REQUEST: 0x81,
  PREPARE: 0x82,
  CONFIG: 0x84,
  WATCH: 0x86,
} as const;

export const Tag = {
  PROTOCOL: 1,
  AGENT_VERSION: 2,
  CAPABILITY: 3,
  STATE: 4,
  TEMPLATE_ID: 5,
  NONCE: 6,
  BOOT_ID: 7,
  CLOCK_NS: 8,
  PID: 9,
  MAX_PAYLOAD: 10,
  HOST_SOFTWARE: 11,
  ERROR_CODE: 12,
  MESSAGE: 13,
  TOTAL_US: 14,
  INTERFACE: 20,
  FORK: 21,
  HOSTNAME: 22,
  MAC: 23,
  IPV4_ADDRESS: 24,
  IPV4_PREFIX: 25,
  IPV4_GATEWAY: 26,
  MACHINE_ID: 27,
  ENTROPY: 28,
  SEED: 29,
  STEP: 40,
  STEP_NAME: 41,
  STEP_OK: 42,
  STEP_US: 43,
  STEP_DETAIL: 44,
  FACT: 45,
  FACT_KEY: 46,
  FACT_VALUE: 47,
  SESSION: 50,
  SESSION_ID: 51,
  USER: 52,
  UID: 53,
  CLASS: 54,
  SESSION_TYPE: 55,
  SESSION_STATE: 56,
  REMOTE: 57,
  ACTIVE: 58,
  SERVICE: 59,
  SESSION_COUNT: 60,
} as const;

/** The HELLO capability of an agent that answers WATCH with SESSIONS (agent 0.2.0 and later). */
export const SESSIONS_CAPABILITY = 'sessions';

/** The codes an agent's ERROR carries (PROTOCOL.md, "Errors"). */
export const AGENT_ERROR_CODES = [
  'bad-magic',
  'frame-too-large',
  'incomplete-frame',
  'unsupported-version',
  'unknown-type',
  'malformed',
  'not-forked',
  'wrong-template',
  'wrong-nonce',
  'internal',
] as const;
