/**
 * Node's EventEmitter starts every emitter with `_events = { __proto__: null }`,
 * which V8 keeps in dictionary mode: 24 B + a 160 B hash table per emitter, and
 * an idle server holds two emitters per connection (WebSocket, ServerSession).
 * A preshaped holder whose prototype chain is null-prototype stays a fast
 * object (24 B + 8 B per slot); lookups of other names ('toString'...) still
 * find nothing. With Node's shape mode on (as for streams), removing the last
 * listener of an event stores undefined instead of deleting the key, so the
 * holder stays fast.
 *
 * Those two classes also skip EventEmitter's constructor (see
 * emitterWithoutInit): it gives every emitter five own fields, of which
 * only the listener table and its count differ from emitter to emitter.
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
  const e = ee as unknown as { _events: Slots; _eventsCount: number };
  e._events = slots;
  e._eventsCount = 0;
}

/**
 * Makes `cls` an EventEmitter whose constructor does not run EventEmitter's
 * (so call socketEventSlots or sessionEventSlots in it instead of super()):
 * EventEmitter.init would give each instance five own fields (40 B), where
 * three hold what every instance shares: the shape mode (on, here, on the
 * prototype), the max-listeners override (none until setMaxListeners()) and
 * captureRejections (read from EventEmitter.prototype, where Node's global
 * setting lives). `instanceof EventEmitter` and every method still work.
 */
export function emitterWithoutInit(cls: abstract new (...args: never[]) => unknown): void {
  Object.setPrototypeOf(cls.prototype, EventEmitter.prototype);
  Object.setPrototypeOf(cls, EventEmitter);
  if (kShapeMode !== undefined) Object.defineProperty(cls.prototype, kShapeMode, { value: true, writable: true, configurable: true });
}

/** Call first in a WebSocket's constructor (see emitterWithoutInit). */
export function socketEventSlots(ee: EventEmitter): void {
  install(ee, new (SocketEventSlots as unknown as new () => Slots)());
}

/** Call first in a ServerSession's constructor (see emitterWithoutInit). */
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
