/** lifeline/server: the Node WebSocket server. */
export { WebSocketServer, type ServerOptions, type ServerEvents, type UpgradeDecision } from '../transport/node/server.js';
export { WebSocket, ReadyState, type SocketOptions, type WebSocketEvents } from '../transport/node/websocket.js';
export { CloseCode } from '../protocol/frame.js';
export * from '../protocol/errors.js';
