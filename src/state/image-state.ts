import { defineStateMachine } from './machine.js';

/**
 * Life of an image record:
 * - `importing`: name reserved by `image import`; the files are being copied or converted into the image dir.
 * - `ready`: files in place and verified by their manifest; VMs and templates may use it.
 * - `deleting`: `image rm` is removing its files (when nothing else uses them), then the record.
 */
export const IMAGE_STATES = ['importing', 'ready', 'deleting'] as const;
export type ImageState = (typeof IMAGE_STATES)[number];

export const imageStateMachine = defineStateMachine<ImageState>({
  resource: 'image',
  errorCode: 'VMFORK_IMAGE_STATE',
  table: {
    importing: ['ready', 'deleting'],
    ready: ['deleting'],
    deleting: ['deleting'],
  },
  transitional: ['importing', 'deleting'],
});
