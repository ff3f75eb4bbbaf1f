/** Guest images: the Debian image builder (debootstrap → ext4 → qcow2 + kernel + initrd + manifest) and imports. */
export { buildImage, type BuildImageOptions, type BuiltImage } from './builder.js';
export { listImages, showImage, type ImageDetail } from './describe.js';
export { DEFAULT_CMDLINE, TEMPLATE_HOSTNAME } from './guest-config.js';
export { importImage, type ImportedImage, type ImportImageOptions } from './image-import.js';
export { checkBuiltName, healImage, registerBuiltImage, removeImage, resolveImageBoot, type ImageBoot, type RemoveImageResult } from './image-registry.js';
export { imageRecipe, type RecipeOptions } from './compose-recipe.js';
export type { ImageSources } from './build-context.js';
export { compileGuestAgent, defaultGuestAgentDir, GUEST_AGENT_BINARY } from './guest-agent.js';
export { HOOKS_GUEST_DIR } from './hooks.js';
export { imageGuestAgent, readManifest, verifyManifest, type ImageGuestAgent, type ImageManifest } from './manifest.js';
export { BASE_RECIPE, canonicalJson, recipeHash, type ImageRecipe } from './recipe.js';
