/** lifeline/client: the Node WebSocket client. */
export { ClientWebSocket, ClientWebSocket as WebSocket, connect, type ClientOptions } from '../transport/node/client.js';
export { ReadyState, type SocketOptions, type WebSocketEvents } from '../transport/node/websocket.js';
export { CloseCode } from '../protocol/frame.js';
export * from '../protocol/errors.js';
