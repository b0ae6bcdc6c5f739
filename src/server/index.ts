/** lifeline/server: the Node WebSocket server. */
export { WebSocketServer, type ServerOptions, type ServerEvents, type UpgradeDecision } from '../transport/node/server.js';
export { WebSocket, ReadyState, type SocketOptions, type WebSocketEvents } from '../transport/node/websocket.js';
export { PreparedMessage } from '../protocol/connection.js';
export { CloseCode } from '../protocol/frame.js';
export * from '../protocol/errors.js';
export { LifelineServer, ServerSession, type LifelineServerOptions, type SessionState, type SessionCloseInfo, type SessionStats, type ServerStats, type SessionRequest } from './lifeline-server.js';
export { type CloseCause } from '../transport/node/websocket.js';
export { HEARTBEAT_PRESETS, type HeartbeatConfig, type HeartbeatOption } from '../session/heartbeat.js';
