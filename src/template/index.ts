/**
 * Templates ("forked state"): a parent VM booted once from an image, prepared, and frozen at one instruction; its
 * RAM file, device state and disk then never change and every child forks from them (src/fork/).
 */
export { createTemplate, DEFAULT_TCG_TB_SIZE_MIB, type CreateTemplateOptions, type SourceDisk } from './create.js';
export { type AgentForkRecord } from './agent-prepare.js';
export { createTemplateFromVm, type TemplateFromVmOptions } from './from-vm.js';
export { dismantleTemplate, healTemplate, warmTargetKey } from './dismantle.js';
export { assertFilesIntact, checkFile, sealFile, templateFiles, type FileCheck, type FileRecord, type TemplateFiles } from './files.js';
export { listTemplates, removeTemplate, showTemplate, templateView, verifyTemplate, type TemplateFileReport } from './manage.js';
export { PREPARE_SCRIPT, prepareTemplateGuest } from './prepare.js';
export { assertTemplateHere, forkPathOf, readyTemplate, templateDisks, templateFileList, templateRecordOf, type ForkPath, type FromVmRecord, type ReadyTemplate, type TemplateRecord } from './record.js';
