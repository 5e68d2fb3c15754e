/** Every CLI command, listed here (not discovered by scanning a folder). */
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../cli/globals';
import * as encode from './encode';
import * as decode from './decode';
import * as reconstruct from './reconstruct';
import * as preprocess from './preprocess';
import * as quantize from './quantize';
import * as dequantize from './dequantize';
import * as info from './info';
import * as doctor from './doctor';
import * as batch from './batch';
import * as concat from './concat';
import * as split from './split';
import * as merge from './merge';
import * as explain from './explain';
import * as mix from './mix';
import * as evaluate from './evaluate';
import * as setup from './setup';

// Each module's builder/handler are typed against its own argv interface.
export const COMMANDS = [
  encode,
  decode,
  reconstruct,
  explain,
  mix,
  evaluate,
  preprocess,
  quantize,
  dequantize,
  info,
  doctor,
  batch,
  merge,
  concat,
  split,
  setup,
] as unknown as CommandModule<GlobalArgs, GlobalArgs>[];
