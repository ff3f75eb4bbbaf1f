/** Where a data dir lives and how it is laid out. */
export { homeLayout, resolveHome, resolveImageDir, type HomeLayout, type HomeOptions } from './home.js';
