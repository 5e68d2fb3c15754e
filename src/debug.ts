/**
 * Debug output behind a switch, never scattered console.log: enabled by
 * NODE_DEBUG=styled-vq (Node's convention) or by the CLI's --debug (setDebug(true)).
 * Lines go to stderr.
 */
import { debuglog } from 'node:util';

const nodeDebug = debuglog('styled-vq');
let forced = false;

export function setDebug(on: boolean): void {
  forced = on;
}

export function isDebug(): boolean {
  return forced || nodeDebug.enabled;
}

export function debug(message: string): void {
  if (forced) process.stderr.write(`styled-vq debug: ${message}\n`);
  else nodeDebug(message);
}
