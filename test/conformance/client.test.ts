// Autobahn-style conformance cases against our ClientWebSocket: the fuzzing
// peer (harness.ts) plays the server over raw TCP. See README.md.
import { registerSuite } from './suite.js';

registerSuite('client');
