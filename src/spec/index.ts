/** The typed VM spec: a leaf both the argv builder (src/qemu/) and VM lifecycles (src/vm/) build on. */
export { decodeVmSpec, defaultCpuModel, parseVmSpec, RESERVED_DEVICE_IDS, vmSpecSchema, type VmSpec, type VmSpecInput } from './vm-spec.js';
