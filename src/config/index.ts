/** Where a data dir lives and how it is laid out. */
export { homeLayout, resolveHome, resolveImageDir, resolveStoreTarget, type HomeLayout, type HomeOptions } from './home.js';
/** The data dir's file modes, the umask, and the token file's checks: the one mode policy (docs/data-dir.md). */
export {
  applyProcessUmask,
  applySharedMode,
  ensurePrivateDir,
  ensureTokenFile,
  GUEST_ROOTFS_UMASK,
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
  PROCESS_UMASK,
  privateFileProblem,
  readTokenFile,
  SEALED_FILE_MODE,
  SHARED_MODES,
  withUmask,
  type PrivateDirResult,
  type SharedKind,
} from './private-files.js';
export { qemuConfinement, QEMU_GROUP, QEMU_UID_BASE, QEMU_UID_COUNT, SANDBOX_OPTION, type Confinement } from './qemu-user.js';
