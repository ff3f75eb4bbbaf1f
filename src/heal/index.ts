/** Healing what a killed vmfork process left half-done: every transitional record whose owner is gone. */
export { healedLine, healInterrupted, type Healed } from './heal.js';
