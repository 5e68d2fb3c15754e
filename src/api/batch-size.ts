/**
 * The batch size of one call: the one asked for, or the default for the device the model
 * runs on (DEFAULTS.batchSizes). 'auto' only knows its provider once a session has opened,
 * so the sessions for `roles` open here if they have not yet.
 */
import { defaultBatchSize } from '../defaults';
import type { GraphRole } from '../model/manifest';
import type { Model } from '../model/model';
import { positiveInteger } from '../util/checks';

export async function batchSizeFor(
  model: Model,
  roles: readonly GraphRole[],
  asked: number | undefined,
  use: 'interactive' | 'batch' = 'interactive',
): Promise<number> {
  if (asked !== undefined) return positiveInteger('batchSize', asked);
  return defaultBatchSize((await model.prepare(roles)).provider, use);
}
