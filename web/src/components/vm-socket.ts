import { api, ApiError, asApiError, call } from '../api';

/** A same-origin WebSocket URL (the session cookie and Origin go with it, as the server requires). */
export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

/**
 * Why a VM's WebSocket closed. A browser never sees the status of a refused upgrade (404, 409, 401: all are close
 * code 1006), so the reason the server gave is used when there is one, else the VM is looked up: its API error
 * (VMFORK_VM_NOT_FOUND, an ended session) or its state says it.
 */
export async function whyClosed(vm: string, event: CloseEvent): Promise<ApiError> {
  const m = /^(VMFORK_[A-Z0-9_]+)[:\s]+(.*)$/s.exec(event.reason);
  if (m?.[1]) return new ApiError(event.code, m[1], m[2] ?? event.reason);
  try {
    const detail = await call(api.GET('/v1/vms/{name}', { params: { path: { name: vm } } }));
    const why = detail.state === 'running' ? 'the VM is running: try again' : `the VM is ${detail.state}; it needs to be running`;
    return new ApiError(event.code, 'CONNECTION_CLOSED', `${event.reason || `connection closed (code ${event.code})`}: ${why}`);
  } catch (err) {
    return asApiError(err);
  }
}
