import { VmforkError } from '../errors.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Names of VMs, images, templates and networks double as guest hostnames and path components, so they must be
 * RFC 1123 labels: lower-case letters, digits and '-', 1–63 characters, not starting or ending with '-'.
 */
export function isValidName(name: string): boolean {
  return LABEL.test(name);
}

export function assertValidName(name: string, what: string): void {
  if (!isValidName(name)) {
    throw new VmforkError(
      'VMFORK_INVALID_NAME',
      `${what} name "${name}" must be an RFC 1123 label: lower-case letters, digits and '-', 1-63 characters, no leading or trailing '-'`,
      { details: { name, what } },
    );
  }
}
