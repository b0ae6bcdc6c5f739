/** lifeline/protocol: the sans-I/O RFC 6455 + RFC 7692 core, for custom transports and tests. */
export * from './errors.js';
export * from './frame.js';
export * from './utf8.js';
export * from './extensions.js';
export * from './parser.js';
export * from './connection.js';
export * from './handshake.js';
export * from './deflate.js';
