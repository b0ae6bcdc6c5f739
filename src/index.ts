/** lifeline: server and client in one import. See lifeline/server, lifeline/client, lifeline/protocol. */
export { WebSocketServer, type ServerOptions, type ServerEvents, type UpgradeDecision } from './transport/node/server.js';
export { WebSocket, ReadyState, type SocketOptions, type WebSocketEvents } from './transport/node/websocket.js';
export { ClientWebSocket, connect, type ClientOptions } from './transport/node/client.js';
export { PreparedMessage } from './protocol/connection.js';
export { CloseCode } from './protocol/frame.js';
export * from './protocol/errors.js';
