/**
 * Cold fields: instance fields that keep their initial value on most
 * instances for their whole life (settings at their defaults, state only a
 * closing, congested or otherwise unusual object writes). Their initial
 * values live on the class's prototype, so an instance pays for one (8 B
 * per field on Node 20, which has no pointer compression) only once it
 * writes it. An idle server holds such objects by the thousand.
 */

/** Puts `defaults` on `proto` as writable, non-enumerable values: each becomes an own property of an instance when first written. */
export function coldFieldDefaults(proto: object, defaults: Readonly<Record<string, unknown>>): void {
  for (const k of Object.keys(defaults)) {
    Object.defineProperty(proto, k, { value: defaults[k], writable: true, enumerable: false, configurable: true });
  }
}

/**
 * Makes every field of `group` an own property of `obj`, with its initial
 * value, in the group's order. For cold fields that first change in
 * different orders on different instances: calling this before the first
 * write of any of them adds one hidden class for the group, not one per
 * order for the hot paths to meet. Callers check first that the group is
 * not own yet (Object.hasOwn on one of its fields).
 */
export function ownColdFields(obj: object, group: Readonly<Record<string, unknown>>): void {
  for (const k of Object.keys(group)) (obj as Record<string, unknown>)[k] = group[k];
}
