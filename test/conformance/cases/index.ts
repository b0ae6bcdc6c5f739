/** Every case group, in Autobahn order. */
import type { Group } from '../harness.js';
import { autofragment } from './autofragment.js';
import { closeHandling } from './close.js';
import { deflate12, deflate13 } from './deflate.js';
import { fragmentation } from './fragmentation.js';
import { framing } from './framing.js';
import { limits } from './limits.js';
import { opcodes } from './opcodes.js';
import { pings } from './pings.js';
import { reserved } from './reserved.js';
import { utf8 } from './utf8.js';

export const GROUPS: Group[] = [framing, pings, reserved, opcodes, fragmentation, utf8, closeHandling, limits, autofragment, deflate12, deflate13];
