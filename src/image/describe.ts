import { dirname } from 'node:path';
import { listImages as listImageRows, requireImage, type Db, type ImageRow } from '../store/index.js';
import { readManifest, verifyManifest, type ImageManifest } from './manifest.js';

/** The registered images of this data dir (records as stored: the JSON of `image list`). */
export async function listImages(db: Db): Promise<ImageRow[]> {
  return listImageRows(db);
}

export interface ImageDetail {
  image: ImageRow;
  manifest: ImageManifest | undefined;
  /** Why the files no longer match the manifest ([] when they do). */
  problems: string[];
}

/** One image with its manifest, checked against its files (sizes, or every sha256 with `deep`). */
export async function showImage(db: Db, name: string, options: { deep?: boolean } = {}): Promise<ImageDetail> {
  const image = await requireImage(db, name);
  const manifest = image.manifest_path ? await readManifest(dirname(image.manifest_path)) : undefined;
  const problems = manifest ? await verifyManifest(dirname(image.disk_path), manifest, { deep: Boolean(options.deep) }) : ['no manifest'];
  return { image, manifest, problems };
}
