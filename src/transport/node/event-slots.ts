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

const kShapeMode = Object.getOwnPropertySymbols(new EventEmitter()).find((s) => s.description === 'shapeMode');

type Slots = Record<string, unknown>;

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
