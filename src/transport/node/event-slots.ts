/**
 * Node's EventEmitter starts every emitter with `_events = { __proto__: null }`,
 * which V8 keeps in dictionary mode: 24 B + a 160 B hash table per emitter, and
 * an idle server holds two emitters per connection (WebSocket, ServerSession).
 * A preshaped holder whose prototype chain is null-prototype stays a fast
 * object (24 B + 8 B per slot); lookups of other names ('toString'...) still
 * find nothing. With Node's shape mode on (as for streams), removing the last
 * listener of an event stores undefined instead of deleting the key, so the
 * holder stays fast.
 */
import { EventEmitter } from 'node:events';

const own = Object.getOwnPropertySymbols(new EventEmitter());
const kShapeMode = own.find((s) => s.description === 'shapeMode');
const kCapture = own.find((s) => s.description === 'kCapture');

type Slots = Record<string, unknown>;

/** An emitter seen through its listener table (what emitMessage reads). */
export interface EventSlots {
  _events: Slots;
}

function SocketEventSlots(this: Slots): void {
  // The events applications listen to on every socket; others ('open',
  // 'ping', 'pong', 'drain') get a key when first listened to.
  this.message = undefined;
  this.close = undefined;
  this.error = undefined;
}
SocketEventSlots.prototype = Object.create(null);

function SessionEventSlots(this: Slots): void {
  this.message = undefined;
  this.close = undefined;
  this.error = undefined;
}
SessionEventSlots.prototype = Object.create(null);

function install(ee: EventEmitter, slots: Slots): void {
  const e = ee as unknown as { _events: Slots; _eventsCount: number } & Record<symbol, unknown>;
  if (e._eventsCount !== 0) return;
  e._events = slots;
  if (kShapeMode !== undefined) e[kShapeMode] = true;
}

/** Call right after super() in a WebSocket. */
export function socketEventSlots(ee: EventEmitter): void {
  install(ee, new (SocketEventSlots as unknown as new () => Slots)());
}

/** Call right after super() in a ServerSession. */
export function sessionEventSlots(ee: EventEmitter): void {
  install(ee, new (SessionEventSlots as unknown as new () => Slots)());
}

/**
 * emit('message', data, isBinary), the event of every message, for the usual
 * single listener: calls it the way emit() would (`this` is the emitter),
 * without emit()'s rest-argument array and generic checks. Several listeners,
 * or captureRejections on, go through emit() itself.
 */
export function emitMessage(ee: EventEmitter, data: unknown, isBinary: boolean): void {
  const h = (ee as unknown as EventSlots)._events.message;
  if (typeof h === 'function' && (kCapture === undefined || (ee as unknown as Record<symbol, unknown>)[kCapture] !== true)) {
    (h as (this: EventEmitter, d: unknown, b: boolean) => void).call(ee, data, isBinary);
  } else if (h !== undefined) {
    ee.emit('message', data, isBinary);
  }
}
