// Shared by the broadcast bench servers (scenario e) and their receivers
// (idle-loadgen.mjs --broadcasts): what broadcast number SEQ looks like, so
// the receivers can check every byte of every delivery without being told.
//
// Each message is 32 bytes of ASCII that name their broadcast:
// "b0000000042:" + 20 filler letters. Plain letters and digits only, so the
// same string sits unescaped inside socket.io's JSON event packet.

export const MESSAGE_BYTES = 32;

const FILLER = 'abcdefghijklmnopqrst';

/** Broadcast `seq` (1..9,999,999,999) as a 32-byte Buffer. */
export function broadcastMessage(seq) {
  const b = Buffer.from(`b${String(seq).padStart(10, '0')}:${FILLER}`, 'latin1');
  if (b.length !== MESSAGE_BYTES) throw new Error(`broadcast ${seq} does not fit in ${MESSAGE_BYTES} bytes`);
  return b;
}

/**
 * The socket.io (v5 protocol over Engine.IO v4) text packet that
 * `io.emit('m', message)` puts on the wire: message(4) + EVENT(2) + JSON args.
 */
export const EIO_EVENT = (message) => `42${JSON.stringify(['m', message])}`;

/** The number of the broadcast from a `broadcast SEQ` command, or a thrown error. */
export function seqArg(id) {
  const seq = Number(id);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new Error(`broadcast: bad sequence number ${JSON.stringify(id)}`);
  return seq;
}
