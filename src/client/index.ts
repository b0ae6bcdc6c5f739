/** lifeline/client: the Node WebSocket client. */
export { ClientWebSocket, ClientWebSocket as WebSocket, connect, type ClientOptions } from '../transport/node/client.js';
export { ReadyState, type SocketOptions, type WebSocketEvents } from '../transport/node/websocket.js';
export { CloseCode } from '../protocol/frame.js';
export * from '../protocol/errors.js';
export { LifelineClient, type NodeLifelineClientOptions } from './lifeline-client.js';
export type { ClientState, ClientCloseCause, ClientCloseInfo, ClientStats, ClientEvents, SocketLike, SocketFactory } from '../session/lifeline-client.js';
export { HEARTBEAT_PRESETS, type HeartbeatConfig, type HeartbeatOption } from '../session/heartbeat.js';
