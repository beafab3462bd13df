// Free loopback ports for the services a test starts (the lookup is shared with the product: lib/free-port.ts).

export { freePort } from '../../lib/free-port.js';
