import { defaultGuestAgentDir, GUEST_AGENT_PACKAGES, guestAgentRecipe } from './guest-agent.js';
import { hooksRecipe } from './hooks.js';
import { SERIAL_CONSOLE_DROPIN } from './guest-config.js';
import { BASE_RECIPE, type ImageRecipe } from './recipe.js';

export interface RecipeOptions {
  /** Build vmfork-guest into the image. @default true */
  guestAgent?: boolean;
  /** @default the repository's guest/ */
  guestAgentDir?: string;
  /** `image build --hooks DIR` */
  hooksDir?: string;
  /** A root shell on the serial console (SERIAL_CONSOLE_DROPIN); `image build --no-serial-autologin`. @default true */
  serialAutologin?: boolean;
}

/**
 * The recipe of an image build: the static base plus the digests of the trees copied in (the agent's sources,
 * hooks). Reads and validates those trees, so a bad hooks dir is refused before minutes of debootstrap.
 */
export async function imageRecipe(options: RecipeOptions = {}): Promise<ImageRecipe> {
  const recipe: ImageRecipe = structuredClone(BASE_RECIPE);
  if (options.guestAgent ?? true) {
    recipe.guestAgent = await guestAgentRecipe(options.guestAgentDir ?? defaultGuestAgentDir());
    recipe.packages = [...new Set([...recipe.packages, ...GUEST_AGENT_PACKAGES])].sort();
  }
  if (options.hooksDir !== undefined) recipe.hooks = await hooksRecipe(options.hooksDir);
  if (options.serialAutologin === false) delete recipe.guestFiles[SERIAL_CONSOLE_DROPIN];
  return recipe;
}
