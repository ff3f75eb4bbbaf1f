/**
 * The one registry of vmfork error codes. Every failure a user can see carries one of these codes; the CLI prints
 * it, the REST API maps it to `status`, and docs/errors.md must list exactly these codes (a test checks it).
 *
 * Adding a code: add it here with a one-line message and an HTTP status, then add a row to docs/errors.md.
 */
export const ERROR_REGISTRY = {
  VMFORK_INVALID_ARGUMENT: { status: 400, message: 'Invalid argument' },
  VMFORK_INVALID_SIZE: { status: 400, message: 'Malformed size' },
  VMFORK_INVALID_NAME: { status: 400, message: 'Invalid name' },
  VMFORK_NOT_ROOT: { status: 403, message: 'This operation needs root' },
  VMFORK_DEPENDENCY_MISSING: { status: 500, message: 'A required host program is missing' },
  VMFORK_QEMU_MISSING: { status: 500, message: 'QEMU is not installed' },
  VMFORK_ACCEL_UNAVAILABLE: { status: 409, message: 'The requested accelerator cannot be used on this host' },
  VMFORK_NO_SPACE: { status: 507, message: 'Not enough free disk space' },
  VMFORK_INSUFFICIENT_MEMORY: { status: 507, message: 'Not enough free memory' },
  VMFORK_STORE_FAILED: { status: 500, message: 'State store operation failed' },
  VMFORK_STORE_UNREACHABLE: { status: 503, message: 'The database cannot be reached' },
  VMFORK_STORE_SCHEMA: { status: 500, message: 'The database is at a schema this vmfork does not know' },
  VMFORK_HOST_STATE: { status: 409, message: 'The host is not in a state that allows this operation' },
  VMFORK_HOST_TAKEN: { status: 409, message: 'Another host agent holds this host name' },
  VMFORK_HOST_NOT_FOUND: { status: 404, message: 'Unknown host' },
  VMFORK_HOST_JOB: { status: 502, message: "The host's agent did not finish the job" },
  VMFORK_HOST_PROTOCOL: { status: 409, message: 'The host agent speaks another protocol version than the fleet' },
  VMFORK_DATASTORE_TAKEN: { status: 409, message: 'The datastore path belongs to another host' },
  VMFORK_IMAGE_NOT_FOUND: { status: 404, message: 'Unknown image' },
  VMFORK_IMAGE_EXISTS: { status: 409, message: 'An image with this name already exists' },
  VMFORK_IMAGE_IN_USE: { status: 409, message: 'The image is in use' },
  VMFORK_IMAGE_BUILD_FAILED: { status: 500, message: 'Guest image build failed' },
  VMFORK_IMAGE_INVALID: { status: 400, message: 'The image file is not a usable disk image' },
  VMFORK_VM_NOT_FOUND: { status: 404, message: 'Unknown VM' },
  VMFORK_VM_ELSEWHERE: { status: 409, message: 'The VM is on another host' },
  VMFORK_VM_EXISTS: { status: 409, message: 'A VM with this name already exists' },
  VMFORK_VM_STATE: { status: 409, message: 'The VM is not in a state that allows this operation' },
  VMFORK_CHECKPOINT_NOT_FOUND: { status: 404, message: 'Unknown checkpoint' },
  VMFORK_CHECKPOINT_EXISTS: { status: 409, message: 'The VM already has a checkpoint with this label' },
  VMFORK_VM_FULL_CLONE: { status: 409, message: 'The VM is a full clone already: its disks have no backing file' },
  VMFORK_TEMPLATE_STATE: { status: 409, message: 'The template is not in a state that allows this operation' },
  VMFORK_NETWORK_STATE: { status: 409, message: 'The network is not in a state that allows this operation' },
  VMFORK_IMAGE_STATE: { status: 409, message: 'The image is not in a state that allows this operation' },
  VMFORK_POOL_STATE: { status: 409, message: 'The pool is not in a state that allows this operation' },
  VMFORK_PUSH_INCOMPATIBLE: { status: 409, message: 'The pushed spec changes what a running child cannot change' },
  VMFORK_POOL_EXHAUSTED: { status: 409, message: 'The pool has no child left to claim' },
  VMFORK_VM_NOT_CLAIMED: { status: 409, message: 'The VM is not claimed (or its claim is already being released)' },
  VMFORK_REPLICA_STATE: { status: 409, message: 'The replica is not in a state that allows this operation' },
  VMFORK_POOL_NOT_FOUND: { status: 404, message: 'Unknown pool' },
  VMFORK_POOL_EXISTS: { status: 409, message: 'A pool with this name already exists' },
  VMFORK_REPLICA_NOT_FOUND: { status: 404, message: 'Unknown replica' },
  VMFORK_REPLICA_CORRUPT: { status: 502, message: "A copied replica's disk does not match its source's sha256" },
  VMFORK_REPLICA_IN_USE: { status: 409, message: 'The replica is in use' },
  VMFORK_VM_START_FAILED: { status: 500, message: 'QEMU failed to start the VM' },
  VMFORK_QMP_UNAVAILABLE: { status: 503, message: 'Cannot reach the QEMU monitor (QMP)' },
  VMFORK_QMP_ERROR: { status: 500, message: 'QEMU rejected a monitor command' },
  VMFORK_TIMEOUT: { status: 504, message: 'A wait ran past its deadline' },
  VMFORK_QMP_TIMEOUT: { status: 504, message: 'A QEMU monitor command timed out' },
  VMFORK_QMP_PROTOCOL: { status: 502, message: 'QEMU monitor protocol violation' },
  VMFORK_AGENT_UNAVAILABLE: { status: 503, message: 'Cannot reach the guest agent' },
  VMFORK_AGENT_ERROR: { status: 500, message: 'The guest agent reported an error' },
  VMFORK_AGENT_TIMEOUT: { status: 504, message: 'The guest agent did not answer in time' },
  VMFORK_AGENT_PROTOCOL: { status: 502, message: 'The guest agent broke its protocol' },
  VMFORK_IDENTITY_FAILED: { status: 500, message: 'A per-child identity step failed or did not verify' },
  VMFORK_QEMU_IMG_FAILED: { status: 500, message: 'qemu-img failed' },
  VMFORK_NETWORK_NOT_FOUND: { status: 404, message: 'Unknown network' },
  VMFORK_NETWORK_EXISTS: { status: 409, message: 'A network with this name already exists' },
  VMFORK_NETWORK_IN_USE: { status: 409, message: 'The network still has leases' },
  VMFORK_NETWORK_EXHAUSTED: { status: 409, message: 'CIDR exhausted' },
  VMFORK_INVALID_CIDR: { status: 400, message: 'Invalid IPv4 CIDR' },
  VMFORK_NETWORK_FAILED: { status: 500, message: 'Setting up the network on the host failed' },
  VMFORK_TEMPLATE_NOT_FOUND: { status: 404, message: 'Unknown template' },
  VMFORK_TEMPLATE_EXISTS: { status: 409, message: 'A template with this name already exists' },
  VMFORK_TEMPLATE_IN_USE: { status: 409, message: 'The template still has children' },
  VMFORK_TEMPLATE_NOT_READY: { status: 409, message: 'The template is not ready to fork' },
  VMFORK_TEMPLATE_CORRUPT: { status: 409, message: 'The template files changed or are missing' },
  VMFORK_TEMPLATE_MISMATCH: { status: 409, message: 'This QEMU or device layout does not match the template' },
  VMFORK_FORK_FAILED: { status: 500, message: 'Forking a child failed' },
  VMFORK_CUSTOMIZE_FAILED: { status: 500, message: 'A customization step in the guest failed' },
  VMFORK_SSH_HOST_KEY: { status: 502, message: "The VM's SSH host key is missing or not the one it reported" },
  VMFORK_DATASTORE_NOT_FOUND: { status: 404, message: 'Unknown datastore' },
  VMFORK_TASK_NOT_FOUND: { status: 404, message: 'Unknown task' },
  VMFORK_TASK_STATE: { status: 409, message: 'The task is not in a state that allows this operation' },
  VMFORK_AUTH_REQUIRED: { status: 401, message: 'This API needs a bearer token or a session' },
  VMFORK_AUTH_INVALID: { status: 403, message: 'The bearer token is wrong' },
  VMFORK_SESSION_INVALID: { status: 401, message: 'The session is unknown, expired or logged out' },
  VMFORK_CSRF: { status: 403, message: 'A cross-site request was refused' },
  VMFORK_ROUTE_NOT_FOUND: { status: 404, message: 'No such API route' },
  VMFORK_NOT_SUPPORTED: { status: 501, message: 'This server does not support the operation' },
  VMFORK_SERVER_UNAVAILABLE: { status: 503, message: 'Cannot reach the vmfork server' },
  VMFORK_SERVER_RUNNING: { status: 409, message: 'A vmfork server already runs on this data dir' },
  VMFORK_TOKEN_FILE_UNSAFE: { status: 500, message: 'A secret file of the data dir is not private to this user' },
  VMFORK_INTERNAL: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

export const ERROR_CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[];

const BRAND = Symbol.for('vmfork.error');

export interface VmforkErrorOptions {
  cause?: unknown;
  /** Structured facts for JSON output and the API (never secrets). */
  details?: Record<string, unknown>;
}

/**
 * Thrown by every vmfork operation that fails in a way a user can act on. `message` is the registry message
 * followed by the specific detail; `detail` keeps that detail alone (so context can be added without repeating the
 * registry message); `cause` keeps the underlying error.
 */
export class VmforkError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, detail?: string, options: VmforkErrorOptions = {}) {
    const base = ERROR_REGISTRY[code].message;
    super(detail ? `${base}: ${detail}` : base, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VmforkError';
    this.code = code;
    this.status = ERROR_REGISTRY[code].status;
    this.detail = detail;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

/** instanceof that survives duplicate copies of the package. */
export function isVmforkError(err: unknown): err is VmforkError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true;
}

/** Wraps anything thrown into a VmforkError, keeping the original as `cause`. */
export function toVmforkError(err: unknown, fallback: ErrorCode = 'VMFORK_INTERNAL'): VmforkError {
  if (isVmforkError(err)) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (err && typeof err === 'object' && (err as NodeJS.ErrnoException).code === 'ENOSPC') {
    return new VmforkError('VMFORK_NO_SPACE', msg, { cause: err });
  }
  return new VmforkError(fallback, msg, { cause: err });
}

export interface ContextOptions {
  /** Code for a failure that carries none of its own (a plain Error, or VMFORK_INTERNAL). */
  fallback?: ErrorCode;
  /** Appended after the detail, e.g. a log tail on lines of its own. */
  suffix?: string;
  details?: Record<string, unknown>;
}

/**
 * Adds context to a failure exactly once: the registry message stays in front, then the context, then the
 * original detail — `A QEMU monitor command timed out: child web-1: waited 60000 ms for run state paused`, never
 * the registry message twice. The original error stays the `cause`.
 */
export function withContext(err: unknown, context: string, options: ContextOptions = {}): VmforkError {
  const e = toVmforkError(err, options.fallback);
  const code = e.code === 'VMFORK_INTERNAL' && options.fallback ? options.fallback : e.code;
  const detail = `${[context, e.detail].filter(Boolean).join(': ')}${options.suffix ?? ''}`;
  return new VmforkError(code, detail, { cause: err, details: { ...e.details, ...options.details } });
}
