import { VmforkError } from '../errors.js';
import { hostNowNs } from '../util/index.js';
import { decodeFields, encodeFields, encodeFrame, field, type Field, type Frame } from './codec.js';
import { MessageType, NONCE_BYTES, PROTOCOL_VERSION, Tag } from './protocol.js';

/** Where the agent is in the fork protocol (PROTOCOL.md, "States"). */
export type AgentForkState = 'idle' | 'fork-pending' | 'configured';

export interface HelloRequest {
  type: 'hello';
  /** Who is asking, for the agent's log, e.g. `vmfork 0.1.0`. */
  hostSoftware?: string;
}

export interface PrepareRequest {
  type: 'prepare';
  /** Opaque id of the template being made: 1-128 of [A-Za-z0-9._:@-]. Every child's CONFIG must repeat it. */
  templateId: string;
  /** @default 'eth0' */
  interface?: string;
  /** Ask to be forked (FORK_ME) once prepared. @default true */
  fork?: boolean;
}

export interface ConfigRequest {
  type: 'config';
  templateId: string;
  /** The nonce of the FORK_ME this child was forked at. */
  nonce: Buffer;
  hostname: string;
  mac: string;
  ipv4?: { address: string; prefix: number; gateway: string };
  machineId: string;
  /** @default 'eth0' */
  interface?: string;
  /** Host entropy for the CRNG (32-512 bytes), credited with RNDADDENTROPY. */
  entropy: Buffer;
  /** The next boot's random seed (32-4096 bytes). */
  seed: Buffer;
  /** Host wall clock in ns; stamped at encoding time when absent, so it is as fresh as the send. */
  hostClockNs?: bigint;
}

/** Asks for the guest's login sessions now and at every change, for as long as this connection lasts. */
export interface WatchRequest {
  type: 'watch';
}

export type HostMessage = HelloRequest | PrepareRequest | ConfigRequest | WatchRequest;

export interface AgentStepFact {
  key: string;
  value: string;
}

/** One step as the agent reports it: facts are what the guest shows after the step (the shell steps' keys). */
export interface AgentStep {
  step: string;
  ok: boolean;
  /** Guest-side duration in microseconds (CLOCK_MONOTONIC). */
  us: number;
  detail?: string;
  facts: AgentStepFact[];
}

interface GuestStamp {
  bootId: string;
  /** Guest wall clock when the agent built the message. */
  clockNs: bigint;
}

export interface AgentHello extends GuestStamp {
  type: 'hello';
  id: number;
  protocol: number;
  agentVersion: string;
  capabilities: string[];
  state: AgentForkState;
  templateId?: string;
  pid: number;
  maxPayload: number;
}

export interface AgentPrepared extends GuestStamp {
  type: 'prepared';
  id: number;
  steps: AgentStep[];
  totalUs: number;
}

export interface AgentForkMe extends GuestStamp {
  type: 'fork-me';
  id: number;
  templateId: string;
  nonce: Buffer;
}

export interface AgentReport extends GuestStamp {
  type: 'report';
  id: number;
  steps: AgentStep[];
  totalUs: number;
}

export interface AgentKicked {
  type: 'kicked';
  id: number;
  steps: AgentStep[];
}

/** One login session as logind records it in /run/systemd/sessions/<id> (PROTOCOL.md, "Sessions"). */
export interface AgentSession {
  /** logind's session id (`3`, `c1`). */
  id: string;
  user: string;
  uid: number;
  /** Always `user` in this protocol: greeter, lock-screen and background sessions are not listed. */
  class: string;
  /** `tty`, `x11`, `wayland`, `unspecified`… (absent when logind recorded none). */
  sessionType?: string;
  /** `online`, `active` or `closing` (logged out; processes it left behind still run). */
  state: string;
  remote: boolean;
  active: boolean;
  /** The PAM service that opened it (`sshd`, `login`, `gdm-password`…). */
  service?: string;
}

/** The guest's class=user sessions: the answer to WATCH (its id), then again at every change. */
export interface AgentSessions {
  type: 'sessions';
  id: number;
  /** Every class=user session; `sessions` lists the first 128 (by id) when there are more. */
  count: number;
  sessions: AgentSession[];
}

export interface AgentErrorMessage {
  type: 'error';
  id: number;
  code: string;
  message: string;
}

export type AgentMessage = AgentHello | AgentPrepared | AgentForkMe | AgentReport | AgentKicked | AgentSessions | AgentErrorMessage;

/** One host message as a complete frame. */
export function encodeHostMessage(id: number, msg: HostMessage): Buffer {
  const f: Field[] = [];
  switch (msg.type) {
    case 'hello':
      if (msg.hostSoftware !== undefined) f.push(field.str(Tag.HOST_SOFTWARE, msg.hostSoftware));
      return encodeFrame(MessageType.HELLO_REQUEST, id, encodeFields(f));
    case 'prepare':
      f.push(field.str(Tag.TEMPLATE_ID, msg.templateId));
      if (msg.interface !== undefined) f.push(field.str(Tag.INTERFACE, msg.interface));
      f.push(field.u8(Tag.FORK, msg.fork === false ? 0 : 1));
      return encodeFrame(MessageType.PREPARE, id, encodeFields(f));
    case 'config':
      f.push(field.str(Tag.TEMPLATE_ID, msg.templateId), field.bytes(Tag.NONCE, msg.nonce));
      f.push(field.str(Tag.HOSTNAME, msg.hostname), field.str(Tag.MAC, msg.mac), field.str(Tag.MACHINE_ID, msg.machineId));
      if (msg.interface !== undefined) f.push(field.str(Tag.INTERFACE, msg.interface));
      if (msg.ipv4) {
        f.push(field.str(Tag.IPV4_ADDRESS, msg.ipv4.address), field.u8(Tag.IPV4_PREFIX, msg.ipv4.prefix), field.str(Tag.IPV4_GATEWAY, msg.ipv4.gateway));
      }
      f.push(field.bytes(Tag.ENTROPY, msg.entropy), field.bytes(Tag.SEED, msg.seed));
      f.push(field.u64(Tag.CLOCK_NS, msg.hostClockNs ?? hostNowNs()));
      return encodeFrame(MessageType.CONFIG, id, encodeFields(f));
    case 'watch':
      return encodeFrame(MessageType.WATCH, id, Buffer.alloc(0));
  }
}

function bad(what: string): VmforkError {
  return new VmforkError('VMFORK_AGENT_PROTOCOL', what);
}

/** Reads a payload's fields against the tags a message may carry: unknown tags and repeated single ones are refused. */
class Fields {
  private readonly byTag = new Map<number, Buffer[]>();

  constructor(
    readonly what: string,
    fields: readonly Field[],
    allowed: readonly number[],
    repeated: readonly number[] = [],
  ) {
    for (const f of fields) {
      if (!allowed.includes(f.tag)) throw bad(`${what} carries an unknown field (tag ${f.tag})`);
      const list = this.byTag.get(f.tag) ?? [];
      if (list.length > 0 && !repeated.includes(f.tag)) throw bad(`${what} repeats field tag ${f.tag}`);
      list.push(f.value);
      this.byTag.set(f.tag, list);
    }
  }

  private one(tag: number): Buffer | undefined {
    return this.byTag.get(tag)?.[0];
  }

  private need(tag: number): Buffer {
    const v = this.one(tag);
    if (v === undefined) throw bad(`${this.what} lacks field tag ${tag}`);
    return v;
  }

  str(tag: number): string {
    return this.need(tag).toString('utf8');
  }

  optStr(tag: number): string | undefined {
    return this.one(tag)?.toString('utf8');
  }

  strs(tag: number): string[] {
    return (this.byTag.get(tag) ?? []).map((b) => b.toString('utf8'));
  }

  bytes(tag: number): Buffer {
    return Buffer.from(this.need(tag));
  }

  groups(tag: number): Buffer[] {
    return this.byTag.get(tag) ?? [];
  }

  uint(tag: number, bytes: 1 | 4): number {
    const v = this.need(tag);
    if (v.length !== bytes) throw bad(`${this.what} field tag ${tag} has ${v.length} bytes, expected ${bytes}`);
    return bytes === 1 ? v.readUInt8(0) : v.readUInt32BE(0);
  }

  u64(tag: number): bigint {
    const v = this.need(tag);
    if (v.length !== 8) throw bad(`${this.what} field tag ${tag} has ${v.length} bytes, expected 8`);
    return v.readBigUInt64BE(0);
  }
}

function decodeSteps(groups: readonly Buffer[]): AgentStep[] {
  return groups.map((g) => {
    const s = new Fields('a step', decodeFields(g), [Tag.STEP_NAME, Tag.STEP_OK, Tag.STEP_US, Tag.STEP_DETAIL, Tag.FACT], [Tag.FACT]);
    const step: AgentStep = {
      step: s.str(Tag.STEP_NAME),
      ok: s.uint(Tag.STEP_OK, 1) === 1,
      us: s.uint(Tag.STEP_US, 4),
      facts: s.groups(Tag.FACT).map((fg) => {
        const f = new Fields('a fact', decodeFields(fg), [Tag.FACT_KEY, Tag.FACT_VALUE]);
        return { key: f.str(Tag.FACT_KEY), value: f.str(Tag.FACT_VALUE) };
      }),
    };
    const detail = s.optStr(Tag.STEP_DETAIL);
    if (detail !== undefined) step.detail = detail;
    return step;
  });
}

const SESSION_TAGS = [Tag.SESSION_ID, Tag.USER, Tag.UID, Tag.CLASS, Tag.SESSION_TYPE, Tag.SESSION_STATE, Tag.REMOTE, Tag.ACTIVE, Tag.SERVICE];

function flag(f: Fields, tag: number): boolean {
  const v = f.uint(tag, 1);
  if (v > 1) throw bad(`${f.what} field tag ${tag} is ${v}, expected 0 or 1`);
  return v === 1;
}

function decodeSessions(id: number, fields: readonly Field[]): AgentSessions {
  const f = new Fields('SESSIONS', fields, [Tag.SESSION_COUNT, Tag.SESSION], [Tag.SESSION]);
  const sessions = f.groups(Tag.SESSION).map((g) => {
    const s = new Fields('a session', decodeFields(g), SESSION_TAGS);
    const session: AgentSession = {
      id: s.str(Tag.SESSION_ID),
      user: s.str(Tag.USER),
      uid: s.uint(Tag.UID, 4),
      class: s.str(Tag.CLASS),
      state: s.str(Tag.SESSION_STATE),
      remote: flag(s, Tag.REMOTE),
      active: flag(s, Tag.ACTIVE),
    };
    if (!session.id || !session.user || !session.state) throw bad(`SESSIONS lists a session with an empty id, user or state`);
    const sessionType = s.optStr(Tag.SESSION_TYPE);
    if (sessionType !== undefined) session.sessionType = sessionType;
    const service = s.optStr(Tag.SERVICE);
    if (service !== undefined) session.service = service;
    return session;
  });
  const count = f.uint(Tag.SESSION_COUNT, 4);
  if (count < sessions.length) throw bad(`SESSIONS counts ${count} session(s) but lists ${sessions.length}`);
  if (new Set(sessions.map((s) => s.id)).size !== sessions.length) throw bad('SESSIONS lists a session id twice');
  return { type: 'sessions', id, count, sessions };
}

const STATES: readonly AgentForkState[] = ['idle', 'fork-pending', 'configured'];

/**
 * A frame from the agent as a typed message. Anything that does not follow PROTOCOL.md — another version, an
 * unknown type, an unknown or missing field — is VMFORK_AGENT_PROTOCOL: the host trusts nothing the guest sends
 * beyond what it can check.
 */
export function decodeAgentMessage(frame: Frame): AgentMessage {
  if (frame.version !== PROTOCOL_VERSION) throw bad(`the agent sent protocol version ${frame.version}; this host speaks ${PROTOCOL_VERSION}`);
  const fields = decodeFields(frame.payload);
  const id = frame.id;
  const stamp = (f: Fields): GuestStamp => ({ bootId: f.str(Tag.BOOT_ID), clockNs: f.u64(Tag.CLOCK_NS) });
  switch (frame.type) {
    case MessageType.HELLO: {
      const f = new Fields('HELLO', fields, [Tag.PROTOCOL, Tag.AGENT_VERSION, Tag.CAPABILITY, Tag.STATE, Tag.TEMPLATE_ID, Tag.PID, Tag.MAX_PAYLOAD, Tag.BOOT_ID, Tag.CLOCK_NS], [Tag.CAPABILITY]);
      const state = f.str(Tag.STATE) as AgentForkState;
      if (!STATES.includes(state)) throw bad(`HELLO names an unknown state ${JSON.stringify(state)}`);
      const hello: AgentHello = {
        type: 'hello',
        id,
        protocol: f.uint(Tag.PROTOCOL, 4),
        agentVersion: f.str(Tag.AGENT_VERSION),
        capabilities: f.strs(Tag.CAPABILITY),
        state,
        pid: f.uint(Tag.PID, 4),
        maxPayload: f.uint(Tag.MAX_PAYLOAD, 4),
        ...stamp(f),
      };
      const templateId = f.optStr(Tag.TEMPLATE_ID);
      if (templateId !== undefined) hello.templateId = templateId;
      return hello;
    }
    case MessageType.PREPARED:
    case MessageType.REPORT: {
      const what = frame.type === MessageType.REPORT ? 'REPORT' : 'PREPARED';
      const f = new Fields(what, fields, [Tag.STEP, Tag.TOTAL_US, Tag.BOOT_ID, Tag.CLOCK_NS], [Tag.STEP]);
      const body = { id, steps: decodeSteps(f.groups(Tag.STEP)), totalUs: f.uint(Tag.TOTAL_US, 4), ...stamp(f) };
      return frame.type === MessageType.REPORT ? { type: 'report', ...body } : { type: 'prepared', ...body };
    }
    case MessageType.FORK_ME: {
      const f = new Fields('FORK_ME', fields, [Tag.TEMPLATE_ID, Tag.NONCE, Tag.BOOT_ID, Tag.CLOCK_NS]);
      const nonce = f.bytes(Tag.NONCE);
      if (nonce.length !== NONCE_BYTES) throw bad(`FORK_ME carries a nonce of ${nonce.length} bytes, expected ${NONCE_BYTES}`);
      return { type: 'fork-me', id, templateId: f.str(Tag.TEMPLATE_ID), nonce, ...stamp(f) };
    }
    case MessageType.KICKED: {
      const f = new Fields('KICKED', fields, [Tag.STEP], [Tag.STEP]);
      return { type: 'kicked', id, steps: decodeSteps(f.groups(Tag.STEP)) };
    }
    case MessageType.SESSIONS:
      return decodeSessions(id, fields);
    case MessageType.ERROR: {
      const f = new Fields('ERROR', fields, [Tag.ERROR_CODE, Tag.MESSAGE]);
      return { type: 'error', id, code: f.str(Tag.ERROR_CODE), message: f.str(Tag.MESSAGE) };
    }
    default:
      throw bad(`the agent sent an unknown message type 0x${frame.type.toString(16)}`);
  }
}
