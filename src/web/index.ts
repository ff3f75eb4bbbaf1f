/**
 * The web console's server side: its pages (the SPA's index.html behind the session cookie, its public assets)
 * and the VMs' live streams (serial console, screen) as WebSockets.
 */
export { CONSOLE_PATHS, defaultWebRoot, registerConsolePages } from './pages.js';
export { RfbInputFilter, type DroppedKind } from './rfb-input-filter.js';
export { registerVmStreams } from './vm-streams.js';
