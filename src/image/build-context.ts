import type { BuildInfo } from './manifest.js';
import type { ImageRecipe } from './recipe.js';

/** What the steps learn about the image; the builder puts it into the manifest. */
export type BuildFacts = Pick<BuildInfo, 'packages' | 'kernel' | 'modules' | 'hygiene' | 'rootfsBytes' | 'guestAgent'>;

/** Directories a recipe's trees are copied from (their paths are not part of the recipe, their content is). */
export interface ImageSources {
  /** The vmfork-guest sources. @default the repository's guest/ */
  guestAgentDir?: string;
  /** `image build --hooks DIR`. */
  hooksDir?: string;
}

export interface BuildContext {
  recipe: ImageRecipe;
  mirror: string;
  sources: ImageSources;
  /** The private `.build-*` dir; everything below it is deleted after the build. */
  buildDir: string;
  rootfs: string;
  /** Files here become `<images>/<hash>/` (DISK_FILE, KERNEL_FILE, INITRD_FILE). */
  outDir: string;
  facts: Partial<BuildFacts>;
}

/** One build step. A throw fails the build; the builder names the step and removes the build dir. */
export interface BuildStep {
  name: string;
  run(ctx: BuildContext): Promise<void>;
}
