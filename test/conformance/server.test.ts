// Autobahn-style conformance cases against our WebSocketServer: the fuzzing
// peer (harness.ts) plays the client over raw TCP. See README.md.
import { registerSuite } from './suite.js';

registerSuite('server');
