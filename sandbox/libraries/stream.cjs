// Node's `stream` for a bundled library. jws, sax and xml define stream classes on it when they load, but
// a destination function uses their synchronous APIs (jwt.sign, xml2js.parseString, xml()): an
// EventEmitter with pipe() is what those definitions need. Streaming through them is not supported.
const { EventEmitter } = require('events');

class Stream extends EventEmitter {
  pipe(dest) {
    this.on('data', (chunk) => dest.write(chunk));
    this.on('end', () => dest.end?.());
    return dest;
  }
}
Stream.Stream = Stream;
module.exports = Stream;
